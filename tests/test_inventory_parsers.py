"""Unit tests for loader.inventory: the pure detection-rule inventory parsers (no Neo4j).

Real corpora are read in place from /work/shared/corpora (see its README); expectations are
computed independently here (plain regexes over the raw text, tomllib, json, csv) and compared
with the parsers' output. Formats without a corpus use tests/fixtures/inventory/.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from loader.inventory import (
    MAX_FILE_BYTES,
    PARSERS,
    STATUSES,
    ParsedInventory,
    normalize_technique_id,
    parse_csv,
    parse_elastic,
    parse_inventory,
    parse_layer,
    parse_sentinel,
    parse_sigma,
    parse_splunk,
    parse_splunk_es,
    summarize,
)
from queries.errors import InvalidInput

CORPORA = Path(os.environ.get("TTPGRAPH_CORPORA", "/work/shared/corpora"))
SIGMA = CORPORA / "sigma"
ELASTIC = CORPORA / "elastic"
ART = CORPORA / "atomic-red-team"
LAYERS = ART / "atomics" / "Indexes" / "Attack-Navigator-Layers"
FIXTURES = Path(__file__).parent / "fixtures" / "inventory"

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"no corpora at {CORPORA}")


def by_id(inv: ParsedInventory) -> dict:
    ids = [r.rule_id for r in inv.rules]
    assert len(ids) == len(set(ids)), "rule ids are not unique"
    return {r.rule_id: r for r in inv.rules}


def check_invariants(inv: ParsedInventory) -> None:
    """What every parser promises about every rule."""
    for rule in inv.rules:
        assert rule.status in STATUSES, rule
        assert rule.techniques == sorted(set(rule.techniques)), rule
        assert all(normalize_technique_id(t) == t for t in rule.techniques), rule
        assert rule.name and rule.rule_id and rule.file, rule
        assert rule.format == inv.format
        assert not Path(rule.file).is_absolute()
    for issue in inv.issues:
        assert "\n" not in issue.message and issue.message, issue
    assert inv.ignored_ids == sorted(set(inv.ignored_ids))
    assert not any(normalize_technique_id(i) for i in inv.ignored_ids)


# --------------------------------------------------------------------------- normaliser


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("T1059", "T1059"),
        ("t1059", "T1059"),
        ("T1059.001", "T1059.001"),
        ("t1059.001", "T1059.001"),
        ("attack.t1059.001", "T1059.001"),
        ("ATTACK.T1059.001", "T1059.001"),
        ("attack.t1003", "T1003"),
        ("T1059/001", "T1059.001"),
        ("T1059-001", "T1059.001"),
        (" T1059.001 ", "T1059.001"),
        ("\tT1003\n", "T1003"),
        ("T1685", "T1685"),  # ATT&CK v19 id: syntax only, no catalogue check here
        ("T0885", "T0885"),  # ATT&CK for ICS
        ("https://attack.mitre.org/techniques/T1059/001/", "T1059.001"),
        ("https://attack.mitre.org/techniques/T1003/", "T1003"),
        ("http://attack.mitre.org/techniques/T1003", "T1003"),
    ],
)
def test_normalize_accepts(raw: str, expected: str) -> None:
    assert normalize_technique_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "attack.execution",
        "attack.defense_evasion",
        "attack.g0016",
        "attack.s0154",
        "attack.ds0009",
        "attack.ta0002",
        "TA0002",
        "G0016",
        "S0154",
        "M1036",
        "DS0009",
        "AML.T0051",
        "AML.T0051.000",
        "T1059.1",  # sub-technique must have exactly three digits
        "T1059.01",
        "T1059.0001",
        "T1059.000",
        "T105",
        "T10590",
        "1059.001",
        "T 1059",
        "T1059 .001",
        "T1059..001",
        "T1059_001",
        "T1059.001 PowerShell",
        "T1059.001,T1003",
        "xattack.t1059",
        "car.2016-04-005",
        "cve.2021-44228",
        "T١٠٥٩",  # non-ASCII digits
        "https://attack.mitre.org/tactics/TA0002/",
        "https://evil.example/techniques/T1059/",
    ],
)
def test_normalize_rejects(raw: str) -> None:
    assert normalize_technique_id(raw) is None


@pytest.mark.parametrize("raw", [None, 1059, 1059.001, ["T1059"], {"id": "T1059"}, True])
def test_normalize_rejects_non_strings(raw: object) -> None:
    assert normalize_technique_id(raw) is None


# --------------------------------------------------------------------------- Sigma corpus

_SIGMA_TITLE = re.compile(r"^title:", re.M)
_SIGMA_ID = re.compile(r"^id:\s*(\S+)", re.M)
_SIGMA_STATUS = re.compile(r"^status:\s*([a-z]+)", re.M)
_SIGMA_TECH_TAG = re.compile(r"^\s*-\s*attack\.(t\d{4}(?:\.\d{3})?)\s*(?:#.*)?$", re.M | re.I)


@pytest.fixture(scope="module")
def sigma_raw() -> dict[str, str]:
    return {
        p.relative_to(SIGMA).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(SIGMA.rglob("*.yml"))
    }


@pytest.fixture(scope="module")
def sigma_parsed() -> tuple[ParsedInventory, float]:
    start = time.perf_counter()
    inv = parse_sigma(SIGMA)
    return inv, time.perf_counter() - start


@needs_corpora
def test_sigma_rule_count_matches_raw_titles(sigma_raw, sigma_parsed) -> None:
    inv, _ = sigma_parsed
    raw_count = sum(len(_SIGMA_TITLE.findall(text)) for text in sigma_raw.values())
    assert raw_count == 4039  # the corpus README's figure
    assert len(inv.rules) == raw_count
    assert inv.issues == []
    check_invariants(inv)


@needs_corpora
def test_sigma_ids_match_raw(sigma_raw, sigma_parsed) -> None:
    inv, _ = sigma_parsed
    raw_ids = {m for text in sigma_raw.values() for m in _SIGMA_ID.findall(text)}
    assert set(by_id(inv)) == raw_ids


@needs_corpora
def test_sigma_techniques_per_file_match_raw_tags(sigma_raw, sigma_parsed) -> None:
    inv, _ = sigma_parsed
    parsed: dict[str, set[str]] = {f: set() for f in sigma_raw}
    for rule in inv.rules:
        parsed[rule.file] |= set(rule.techniques)
    expected = {
        f: {t.upper() for t in _SIGMA_TECH_TAG.findall(text)} for f, text in sigma_raw.items()
    }
    assert parsed == expected
    # the commented-out tag in the fortigate rule is not a technique of that rule
    fortigate = "rules/network/fortinet/fortigate/fortinet_fortigate_user_group_modified.yml"
    assert "# - attack.t1098.007" in sigma_raw[fortigate]
    assert "T1098.007" not in parsed[fortigate]
    assert inv.ignored_ids == []
    # sub-technique-only tags are kept as written, the parent is not invented
    assert any(
        any("." in t for t in r.techniques) and not any("." not in t for t in r.techniques)
        for r in inv.rules
    )


@needs_corpora
def test_sigma_statuses(sigma_raw, sigma_parsed) -> None:
    inv, _ = sigma_parsed
    table = {"stable": "active", "test": "test", "experimental": "experimental"}
    table |= {"deprecated": "deprecated", "unsupported": "unsupported"}
    for rule in inv.rules:
        top = rule.file.split("/", 1)[0]
        if top in {"deprecated", "unsupported"}:
            assert rule.status == top, rule
        else:
            raw = _SIGMA_STATUS.findall(sigma_raw[rule.file])
            assert rule.status == table[raw[0]], rule
    counts = Counter(r.status for r in inv.rules)
    assert counts["deprecated"] == sum(1 for f in sigma_raw if f.startswith("deprecated/"))
    assert counts["unsupported"] == sum(1 for f in sigma_raw if f.startswith("unsupported/"))


@needs_corpora
def test_sigma_multi_document_files(sigma_parsed) -> None:
    inv, _ = sigma_parsed
    rules = {r.file: r for r in inv.rules if r.file.startswith("unsupported/windows/")}
    # title in the global document, id only in the second document
    apt29 = rules["unsupported/windows/win_apt_apt29_tor.yml"]
    assert apt29.rule_id == "c069f460-2b87-4010-8dcf-e45bab362624"
    assert apt29.techniques == ["T1050", "T1543.003"]
    assert "attack.g0016" in apt29.raw_tags
    reimaging = rules["unsupported/windows/sysmon_process_reimaging.yml"]
    assert reimaging.techniques == [] and reimaging.raw_tags == ["attack.defense_evasion"]


@needs_corpora
def test_sigma_speed(sigma_parsed) -> None:
    _, seconds = sigma_parsed
    assert seconds < 5.0, f"parse_sigma took {seconds:.2f}s"


@needs_corpora
def test_sigma_subfolder_root_keeps_folder_status() -> None:
    inv = parse_sigma(SIGMA / "deprecated")
    assert inv.rules and {r.status for r in inv.rules} == {"deprecated"}
    single = next(p for p in sorted((SIGMA / "rules").rglob("*.yml")))
    one = parse_sigma(single)
    assert len(one.rules) == 1 and one.rules[0].file == single.name


# --------------------------------------------------------------------------- Elastic corpus


@pytest.fixture(scope="module")
def elastic_parsed() -> ParsedInventory:
    return parse_elastic(ELASTIC)


def _elastic_rule_files() -> list[Path]:
    return sorted(
        p for d in ("rules", "rules_building_block") for p in (ELASTIC / d).rglob("*.toml")
    )


@needs_corpora
def test_elastic_counts(elastic_parsed) -> None:
    inv = elastic_parsed
    check_invariants(inv)
    assert inv.issues == []
    rule_files = _elastic_rule_files()
    hunt_files = sorted((ELASTIC / "hunting").rglob("*.toml"))
    assert len(rule_files) == 2192  # the corpus README's figure
    rules = [r for r in inv.rules if r.status != "hunting"]
    hunts = [r for r in inv.rules if r.status == "hunting"]
    assert len(rules) == len(rule_files)
    assert len(hunts) == len(hunt_files)
    assert {r.file for r in hunts} == {p.relative_to(ELASTIC).as_posix() for p in hunt_files}


@needs_corpora
def test_elastic_techniques_sample_against_tomllib(elastic_parsed) -> None:
    rules = by_id(
        ParsedInventory("elastic", "", [r for r in elastic_parsed.rules if r.status != "hunting"])
    )
    sample = _elastic_rule_files()[::10]
    repeated = 0
    for path in sample:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        expected: set[str] = set()
        seen: list[str] = []
        for threat in doc["rule"].get("threat", []):
            for tech in threat.get("technique", []):
                seen.append(tech["id"])
                expected.add(tech["id"])
                expected |= {sub["id"] for sub in tech.get("subtechnique", [])}
        repeated += len(seen) != len(set(seen))
        rule = rules[doc["rule"]["rule_id"]]
        assert set(rule.techniques) == expected, path
        assert len(rule.techniques) == len(expected)
        assert rule.name == " ".join(doc["rule"]["name"].split())
    assert len(sample) > 200
    assert repeated > 0, "the sample should include techniques repeated across tactic blocks"


@needs_corpora
def test_elastic_statuses_against_raw_text(elastic_parsed) -> None:
    by_file = {r.file: r for r in elastic_parsed.rules}
    maturity = re.compile(r'^maturity\s*=\s*"(\w+)"', re.M)
    bbt = re.compile(r"^building_block_type\s*=", re.M)
    table = {"production": "active", "development": "experimental", "deprecated": "deprecated"}
    for path in _elastic_rule_files():
        rel = path.relative_to(ELASTIC).as_posix()
        text = path.read_text(encoding="utf-8")
        in_deprecated_folder = "_deprecated" in path.relative_to(ELASTIC).parts
        if in_deprecated_folder or maturity.findall(text)[0] == "deprecated":
            expected = "deprecated"
        elif bbt.search(text):
            expected = "building_block"
        else:
            expected = table[maturity.findall(text)[0]]
        assert by_file[rel].status == expected, rel
    counts = Counter(r.status for r in elastic_parsed.rules)
    assert counts["deprecated"] == len(list((ELASTIC / "rules" / "_deprecated").glob("*.toml")))
    assert counts["building_block"] > 100


@needs_corpora
def test_elastic_hunting_atlas_ids_are_ignored(elastic_parsed) -> None:
    mitre_line = re.compile(r"^mitre\s*=\s*\[(.*?)\]", re.M | re.S)
    raw_ids: set[str] = set()
    for path in (ELASTIC / "hunting").rglob("*.toml"):
        for block in mitre_line.findall(path.read_text(encoding="utf-8")):
            raw_ids |= set(re.findall(r"['\"]([^'\"]+)['\"]", block))
    atlas = {i for i in raw_ids if i.startswith("AML.")}
    assert atlas, "the hunting corpus holds ATLAS ids"
    assert set(elastic_parsed.ignored_ids) == atlas
    hunted = {t for r in elastic_parsed.rules if r.status == "hunting" for t in r.techniques}
    assert hunted == {i for i in raw_ids if not i.startswith("AML.")}


@needs_corpora
def test_elastic_duplicate_ids_are_noted_not_merged(elastic_parsed) -> None:
    counts = Counter(r.rule_id for r in elastic_parsed.rules)
    dupes = {k for k, v in counts.items() if v > 1}
    noted = {n.split()[2] for n in elastic_parsed.notes if n.startswith("rule id ")}
    assert noted == dupes


# --------------------------------------------------------------------------- Atomic Red Team


@needs_corpora
@pytest.mark.parametrize("layer", sorted(LAYERS.glob("*.json")), ids=lambda p: p.name)
def test_every_art_layer(layer: Path) -> None:
    data = json.loads(layer.read_text(encoding="utf-8"))
    expected = {t["techniqueID"] for t in data["techniques"] if (t.get("score") or 0) > 0}
    inv = parse_layer(layer)
    check_invariants(inv)
    assert inv.issues == []
    assert {t for r in inv.rules for t in r.techniques} == expected
    assert len(inv.rules) == len(expected)
    assert all(r.name.startswith(data["name"]) and r.status == "active" for r in inv.rules)


@needs_corpora
def test_art_layer_folder_is_not_empty() -> None:
    assert len(list(LAYERS.glob("*.json"))) >= 10


@needs_corpora
def test_art_index_csv() -> None:
    index = ART / "atomics" / "Indexes" / "Indexes-CSV" / "index.csv"
    with index.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected: dict[str, set[str]] = {}
    for row in rows:
        expected.setdefault(row["Test GUID"], set()).add(row["Technique #"])
    inv = parse_csv(index)
    check_invariants(inv)
    assert inv.issues == []
    got = {r.rule_id: set(r.techniques) for r in inv.rules}
    assert got == expected
    assert len(got) == 1819 and len({t for s in got.values() for t in s}) == 341  # README
    assert len(rows) > len(got)  # rows repeat once per tactic and were merged


# --------------------------------------------------------------------------- Splunk


def test_splunk_fixture() -> None:
    inv = parse_splunk(FIXTURES / "splunk")
    check_invariants(inv)
    rules = by_id(inv)
    assert inv.issues == []
    assert len(rules) == 4
    old = rules["0a6f3c2e-2f0c-4d7e-9a55-7c1f0d0c1a01"]
    assert (old.status, old.techniques) == ("active", ["T1003", "T1003.002"])
    new = rules["7d1c9a1e-5b7a-4f61-8f3e-2f1a2b3c4d02"]  # top-level mitre_attack_id (2026 schema)
    assert (new.status, new.techniques) == ("experimental", ["T1027", "T1059.001"])
    assert new.raw_tags == ["T1059.001", "t1027", "T1059.1"]
    dep = rules["9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c04"]
    assert (dep.status, dep.techniques) == ("deprecated", ["T1569.002"])
    assert rules["3c0e5d6a-9b1f-4e2a-8d7c-6b5a4f3e2d03"].techniques == []
    assert inv.ignored_ids == ["T1059.1"]
    notes = " ".join(inv.notes)
    assert "baselines/baseline_of_cloud_api_calls.yml" in notes
    assert "stories/credential_dumping.yml" in notes


def test_splunk_folder_status_overrides(tmp_path: Path) -> None:
    body = "name: R\nid: r-1\nstatus: production\nsearch: '| tstats count'\n"
    body += "tags:\n  mitre_attack_id: [T1003]\n"
    (tmp_path / "removed").mkdir()
    (tmp_path / "removed" / "r.yml").write_text(body)
    inv = parse_splunk(tmp_path)
    assert [(r.status, r.raw_status) for r in inv.rules] == [("deprecated", "production")]


# --------------------------------------------------------------------------- Splunk ES


@pytest.mark.parametrize("name", ["saved_searches.csv", "saved_searches.json"])
def test_splunk_es_export(name: str) -> None:
    inv = parse_splunk_es(FIXTURES / "splunk_es" / name)
    check_invariants(inv)
    rules = by_id(inv)
    assert set(rules) == {
        "Access - Brute Force Access Behavior Detected - Rule",
        "ESCU - Registry Hive Export via Reg - Rule",
        "Threat - Encoded PowerShell - Rule",
        "Endpoint - Bad Annotations - Rule",
        "Threat - Prompt Injection - Rule",
    }
    brute = rules["Access - Brute Force Access Behavior Detected - Rule"]
    assert brute.name == "Brute Force Access Behavior Detected"
    assert brute.techniques == ["T1110", "T1110.001", "T1110.003"]  # two search heads merged
    reg = rules["ESCU - Registry Hive Export via Reg - Rule"]
    assert (reg.status, reg.techniques) == ("disabled", ["T1003", "T1003.002"])
    assert rules["Threat - Encoded PowerShell - Rule"].name == "Threat - Encoded PowerShell - Rule"
    assert rules["Threat - Prompt Injection - Rule"].techniques == ["T1059.006"]
    assert inv.ignored_ids == ["AML.T0051"]
    assert [i.file for i in inv.issues] == [name]
    assert "Bad Annotations" in inv.issues[0].message
    assert any("Errors in the last 24 hours" in n for n in inv.notes)
    assert Counter(r.status for r in inv.rules) == {"active": 4, "disabled": 1}


def test_splunk_es_rest_entry_and_json_lines(tmp_path: Path) -> None:
    ann = json.dumps({"mitre_attack": ["T1021.001"]})
    entry = {
        "entry": [
            {"name": "A - RDP - Rule", "content": {"disabled": True, _es("enabled"): "1"}},
            {
                "name": "B - RDP tunnel - Rule",
                "content": {"disabled": False, _es("enabled"): 1, _es("annotations"): ann},
            },
        ]
    }
    (tmp_path / "rest.json").write_text(json.dumps(entry))
    inv = parse_splunk_es(tmp_path / "rest.json")
    got = {r.rule_id: (r.status, r.techniques) for r in inv.rules}
    assert got == {
        "A - RDP - Rule": ("disabled", []),
        "B - RDP tunnel - Rule": ("active", ["T1021.001"]),
    }
    lines = [json.dumps({"preview": False, "result": {"title": "C", "disabled": "0"}})] * 2
    (tmp_path / "export.json").write_text("\n".join(lines))
    inv = parse_splunk_es(tmp_path / "export.json")
    assert [(r.rule_id, r.status) for r in inv.rules] == [("C", "active")]
    (tmp_path / "bad.json").write_text('{"results": [1, {"title": "D"}]}')
    inv = parse_splunk_es(tmp_path / "bad.json")
    assert [r.rule_id for r in inv.rules] == ["D"] and len(inv.issues) == 1


def _es(key: str) -> str:
    return f"action.correlationsearch.{key}"


# --------------------------------------------------------------------------- Sentinel


def test_sentinel_fixture() -> None:
    inv = parse_sentinel(FIXTURES / "sentinel")
    check_invariants(inv)
    assert inv.issues == []
    rules = by_id(inv)
    got = {k: (r.status, r.techniques) for k, r in rules.items()}
    assert got == {
        "2b0f2a3c-6d5e-4f1a-9b8c-7d6e5f4a3b11": ("active", ["T1558", "T1558.003"]),
        "4c1e3b2a-8f7d-4e6c-9a5b-3c2d1e0f9a12": ("active", ["T1070.001"]),
        "5d2f4c3b-9a8e-4f7d-8b6c-4d3e2f1a0b13": ("deprecated", ["T1110.003"]),
        "6e3a5d4c-0b9f-4a8e-9c7d-5e4f3a2b1c14": ("active", ["T1078", "T1621"]),
        "7f4b6e5d-1c0a-4b9f-8d8e-6f5a4b3c2d15": ("unsupported", []),
        "8a5c7f6e-2d1b-4c0a-9e9f-7a6b5c4d3e16": ("active", ["T1530", "T1567", "T1567.002"]),
        "9b6d8a7f-3e2c-4d1b-8f0a-8b7c6d5e4f17": ("disabled", ["T1114", "T1114.003"]),
    }
    assert inv.ignored_ids == ["AML.T0051"]
    assert rules["6e3a5d4c-0b9f-4a8e-9c7d-5e4f3a2b1c14"].file == (
        "Solutions/Okta/Analytic Rules/OktaMFAFatigue.yaml"
    )
    assert "CredentialAccess" in rules["2b0f2a3c-6d5e-4f1a-9b8c-7d6e5f4a3b11"].raw_tags
    assert any("OktaWorkbookMetadata.yaml" in n for n in inv.notes)


# --------------------------------------------------------------------------- CSV / list


def test_csv_fixture() -> None:
    inv = parse_csv(FIXTURES / "csv" / "inventory.csv")
    check_invariants(inv)
    got = {r.rule_id: (r.name, r.status, r.techniques) for r in inv.rules}
    assert got == {
        "R-001": ("LSASS access by unusual process", "active", ["T1003.001"]),
        "R-002": ("Encoded PowerShell", "active", ["T1027", "T1027.010", "T1059.001"]),
        "R-003": ("Port scan", "disabled", ["T1046"]),
        "R-004": ("Kerberoasting", "test", ["T1558.003"]),
        "R-005": ("Old VPN rule", "deprecated", ["T1133"]),
        "R-006": ("Todo: map this one", "experimental", []),
        "R-007": ("Typo rule", "active", []),
    }
    assert inv.ignored_ids == ["T1059.1"]
    assert inv.issues == []


def test_csv_semicolon_and_header_variants(tmp_path: Path) -> None:
    inv = parse_csv(FIXTURES / "csv" / "inventory_semicolon.csv")
    assert {r.name: r.techniques for r in inv.rules} == {
        "Suspicious cron": ["T1053.003"],
        "Shadow copy deletion": ["T1490"],
    }
    for header in ("technique", "Technique ID", "attack_id", "ATT&CK ID", "mitre_attack_id"):
        path = tmp_path / "x.csv"
        path.write_text(f"name,{header}\nA,T1003\nB,attack.t1059.001\n")
        got = {r.name: r.techniques for r in parse_csv(path).rules}
        assert got == {"A": ["T1003"], "B": ["T1059.001"]}, header
    path = tmp_path / "tabs.tsv"
    path.write_text("Rule\tTechnique #\tenabled\nA\tT1003\tfalse\nB\tT1005\ttrue\n")
    assert {r.name: r.status for r in parse_csv(path).rules} == {"A": "disabled", "B": "active"}


def test_csv_plain_list_and_missing_column() -> None:
    inv = parse_csv(FIXTURES / "csv" / "covered_list.txt")
    assert inv.issues == []
    assert [r.rule_id for r in inv.rules] == ["T1003", "T1021.002", "T1059.001"]
    assert inv.ignored_ids == ["TA0002"]
    bad = parse_csv(FIXTURES / "csv" / "no_technique_column.csv")
    assert bad.rules == [] and len(bad.issues) == 1


# --------------------------------------------------------------------------- layers


def test_layer_rules(tmp_path: Path) -> None:
    layer = {
        "name": "EDR coverage",
        "versions": {"attack": "18", "navigator": "5.1.0", "layer": "4.5"},
        "domain": "enterprise-attack",
        "techniques": [
            {"techniqueID": "T1059.001", "tactic": "execution", "score": 3, "enabled": True},
            {"techniqueID": "T1078", "tactic": "persistence", "score": 1},
            {"techniqueID": "T1078", "tactic": "initial-access", "score": 0},
            {"techniqueID": "t1003", "tactic": "credential-access", "score": 2},
            {"techniqueID": "T1021", "tactic": "lateral-movement", "score": 0},
            {"techniqueID": "T1005", "tactic": "collection", "score": 5, "enabled": False},
            {"techniqueID": "T1490", "tactic": "impact"},
            {"techniqueID": "AML.T0051", "score": 1},
        ],
    }
    (tmp_path / "l.json").write_text(json.dumps(layer))
    inv = parse_layer(tmp_path / "l.json")
    check_invariants(inv)
    assert [r.rule_id for r in inv.rules] == ["T1003", "T1059.001", "T1078"]
    assert inv.ignored_ids == ["AML.T0051"]
    assert inv.rules[2].raw_tags == ["T1078", "persistence"]
    assert any("disabled" in n for n in inv.notes)
    # no scores at all: a colour or a comment marks coverage
    for t in layer["techniques"]:
        t.pop("score", None)
    layer["techniques"][0]["color"] = "#66ff66"
    layer["techniques"][3]["comment"] = "Sysmon 10"
    (tmp_path / "l.json").write_text(json.dumps(layer))
    assert [r.rule_id for r in parse_layer(tmp_path / "l.json").rules] == ["T1003", "T1059.001"]


def test_layer_not_a_layer(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"name": "x"}')
    assert parse_layer(tmp_path / "x.json").issues[0].message.startswith("not a Navigator layer")
    (tmp_path / "y.json").write_text("{not json")
    assert parse_layer(tmp_path / "y.json").issues[0].message.startswith("invalid JSON")


# --------------------------------------------------------------------------- robustness


def _sigma(title: str = "R", extra: str = "") -> str:
    return f"title: {title}\nid: id-{title}\nstatus: test\ntags:\n  - attack.t1003\n{extra}"


def test_robustness_broken_files(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(_sigma("good"))
    (tmp_path / "broken.yml").write_text("title: [unclosed\ntags: x\n")
    (tmp_path / "latin1.yml").write_bytes(_sigma("Règle").encode("latin-1"))
    (tmp_path / "empty.yml").write_text("")
    (tmp_path / "blank.yaml").write_text("\n  \n")
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    (tmp_path / "scalar.yml").write_text("just a string\n")
    (tmp_path / "bad_type.yml").write_text("title: t\ntags: !!python/object/apply:os.getcwd []\n")
    (tmp_path / "bom.yml").write_bytes("\ufeff".encode() + _sigma("bom").encode())
    (tmp_path / "nul.yml").write_bytes(b"title: a\x00b\n")
    (tmp_path / "big.yml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    (tmp_path / "notes.txt").write_text("not a rule, wrong suffix")
    (tmp_path / "multi.yml").write_text(_sigma("m1") + "---\n- not a mapping\n---\n" + _sigma("m2"))
    inv = parse_sigma(tmp_path)
    check_invariants(inv)
    assert sorted(r.name for r in inv.rules) == ["bom", "good", "m1", "m2"]
    issues = {i.file: i.message for i in inv.issues}
    assert set(issues) == {
        "broken.yml",
        "latin1.yml",
        "empty.yml",
        "blank.yaml",
        "list.yml",
        "scalar.yml",
        "bad_type.yml",
        "nul.yml",
        "big.yml",
        "multi.yml",
    }
    assert issues["broken.yml"].startswith("invalid YAML") and "line" in issues["broken.yml"]
    assert issues["latin1.yml"].startswith("not UTF-8")
    assert issues["empty.yml"] == issues["blank.yaml"] == "empty file"
    assert "not a mapping" in issues["list.yml"] and "not a mapping" in issues["multi.yml"]
    assert "5 MB" in issues["big.yml"]
    assert summarize(inv)["parse_issues"] == 10


def test_sigma_yaml_merge_keys_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "merge.yml").write_text(
        "base: &base\n  status: stable\n  tags: [attack.t1003]\ntitle: merged\nid: m\n<<: *base\n"
    )
    (tmp_path / "alias.yml").write_text(
        "detection:\n  sel: &t [attack.t1059.001]\ntitle: aliased\nid: a\ntags: *t\n"
    )
    got = {r.name: (r.status, r.techniques) for r in parse_sigma(tmp_path).rules}
    assert got == {"merged": ("active", ["T1003"]), "aliased": ("unknown", ["T1059.001"])}


def test_robustness_yaml_alias_bomb_is_cheap(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines += ["title: bomb", "id: bomb", "tags: *a9", ""]
    (tmp_path / "bomb.yml").write_text("\n".join(lines))
    start = time.perf_counter()
    inv = parse_sigma(tmp_path)
    assert time.perf_counter() - start < 2
    assert [(r.name, r.techniques, r.raw_tags) for r in inv.rules] == [("bomb", [], [])]


def test_robustness_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yml").write_text(_sigma("secret"))
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "real.yml").write_text(_sigma("real"))
    (root / "link_out.yml").symlink_to(outside / "secret.yml")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)
    (root / "link_in.yml").symlink_to(root / "sub" / "real.yml")
    (root / "dir_in").symlink_to(root / "sub", target_is_directory=True)
    (root / ".git").mkdir()
    (root / ".git" / "hidden.yml").write_text(_sigma("hidden"))
    inv = parse_sigma(root)
    # read once, under its real name; never "secret" (outside) or "hidden" (.git)
    assert [(r.name, r.file) for r in inv.rules] == [("real", "sub/real.yml")]
    issues = {i.file: i.message for i in inv.issues}
    assert set(issues) == {"link_out.yml", "dir_out"}
    assert all("outside the imported root" in m for m in issues.values())


def test_robustness_symlink_to_unwalked_file_inside_root(tmp_path: Path) -> None:
    (tmp_path / "rule.txt").write_text(_sigma("txt"))
    (tmp_path / "rule.yml").symlink_to(tmp_path / "rule.txt")
    inv = parse_sigma(tmp_path)
    assert [(r.name, r.file) for r in inv.rules] == [("txt", "rule.yml")]


def test_robustness_unreadable_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "r.yml").write_text(_sigma("locked"))
    (tmp_path / "ok.yml").write_text(_sigma("ok"))
    real_scandir = os.scandir

    def scandir(path):  # what a folder without read permission does (even for root)
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    inv = parse_sigma(tmp_path)
    assert [r.name for r in inv.rules] == ["ok"]
    assert [(i.file, i.message) for i in inv.issues] == [
        ("locked", "cannot read folder: Permission denied")
    ]


@pytest.mark.parametrize(
    "body",
    [
        "title: x\ntags: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "title: x\ntags: " + "{a: " * 50_000 + "}" * 50_000 + "\n",
        "- " * 100_000 + "x\n",
        "? " * 100_000 + "x\n",
    ],
    ids=["flow-seq", "flow-map", "compact-seq", "complex-key"],
)
def test_robustness_deep_yaml_is_an_issue_not_a_crash(tmp_path: Path, body: str) -> None:
    # libyaml recurses on the C stack: without the guard these kill the interpreter (SIGSEGV)
    (tmp_path / "deep.yml").write_text(body)
    (tmp_path / "ok.yml").write_text(_sigma("ok"))
    for parser in (parse_sigma, parse_splunk, parse_sentinel):
        inv = parser(tmp_path)
        assert [i.file for i in inv.issues] == ["deep.yml"], parser
        assert inv.issues[0].message.startswith("invalid YAML")


def test_many_brackets_but_shallow_yaml_still_parses(tmp_path: Path) -> None:
    lists = "\n".join(f"  sel{i}: [a{i}, [b, {{c: d}}]]" for i in range(300))
    nested = "[" * 150 + "]" * 150
    (tmp_path / "wide.yml").write_text(_sigma("wide", f"nested: {nested}\ndetection:\n{lists}\n"))
    inv = parse_sigma(tmp_path)
    assert inv.issues == []
    assert [(r.name, r.techniques) for r in inv.rules] == [("wide", ["T1003"])]


def test_robustness_deep_toml_and_json(tmp_path: Path) -> None:
    (tmp_path / "deep.toml").write_text("[rule]\nthreat = " + "[" * 50_000 + "]" * 50_000)
    assert parse_elastic(tmp_path).issues[0].message == "invalid TOML: nested too deeply"
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(deep)
    (tmp_path / "lines.json").write_text('{"result": {"title": "a"}}\n' + deep)
    for parser in (parse_layer, parse_splunk_es):
        for name in ("deep.json", "lines.json"):
            assert parser(tmp_path / name).issues[0].message.startswith("invalid JSON")
    assert parse_sentinel(tmp_path / "deep.json").issues[0].message.startswith("invalid JSON")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_robustness_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yml")
    (tmp_path / "ok.yml").write_text(_sigma("ok"))
    inv = parse_sigma(tmp_path)
    assert [r.name for r in inv.rules] == ["ok"]
    assert [(i.file, i.message) for i in inv.issues] == [("pipe.yml", "not a regular file")]
    with pytest.raises(InvalidInput):
        parse_sigma(tmp_path / "pipe.yml")


def _elastic_toml(rule_id: str, maturity: str, extra: str = "") -> str:
    return (
        f'[metadata]\nmaturity = "{maturity}"\n\n[rule]\nname = "R {rule_id}"\n'
        f'rule_id = "{rule_id}"\ntype = "query"\n{extra}\n'
        '[[rule.threat]]\nframework = "MITRE ATT&CK"\n[[rule.threat.technique]]\n'
        'id = "T1003"\n[[rule.threat.technique.subtechnique]]\nid = "T1003.001"\n'
        '[rule.threat.tactic]\nid = "TA0006"\n'
    )


def test_elastic_status_precedence(tmp_path: Path) -> None:
    (tmp_path / "rules" / "_deprecated").mkdir(parents=True)
    (tmp_path / "rules" / "bb.toml").write_text(
        _elastic_toml("bb", "production", 'building_block_type = "default"')
    )
    (tmp_path / "rules" / "dev.toml").write_text(_elastic_toml("dev", "development"))
    (tmp_path / "rules" / "odd.toml").write_text(_elastic_toml("odd", "sandbox"))
    (tmp_path / "rules" / "_deprecated" / "old.toml").write_text(_elastic_toml("old", "production"))
    inv = parse_elastic(tmp_path)
    got = {r.rule_id: (r.status, r.raw_status) for r in inv.rules}
    assert got == {
        "bb": ("building_block", "production"),
        "dev": ("experimental", "development"),
        "odd": ("unknown", "sandbox"),
        "old": ("deprecated", "production"),
    }
    assert all(r.techniques == ["T1003", "T1003.001"] for r in inv.rules)
    assert inv.rules[0].raw_tags == ["TA0006", "T1003", "T1003.001"]


def test_robustness_elastic_broken_toml(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text('[rule]\nname = "unterminated\n')
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "latin1.toml").write_bytes('[rule]\nname = "Règle"\n'.encode("latin-1"))
    (tmp_path / "nameless.toml").write_text('[metadata]\nmaturity = "production"\n[rule]\n')
    inv = parse_elastic(tmp_path)
    issues = {i.file: i.message for i in inv.issues}
    assert inv.rules == []
    assert issues["broken.toml"].startswith("invalid TOML")
    assert issues["pyproject.toml"].startswith("not an Elastic rule")
    assert issues["latin1.toml"].startswith("not UTF-8")
    assert "rule.name" in issues["nameless.toml"]
    check_invariants(inv)


def test_robustness_bad_splunk_and_sentinel(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("name: [\n")
    (tmp_path / "latin1.yaml").write_bytes("name: Règle\nquery: x\n".encode("latin-1"))
    for parser in (parse_splunk, parse_sentinel):
        inv = parser(tmp_path)
        assert inv.rules == [] and {i.file for i in inv.issues} == {"broken.yml", "latin1.yaml"}
    (tmp_path / "arm.json").write_text("[1, 2")
    issues = {i.file: i.message for i in parse_sentinel(tmp_path).issues}
    assert issues["arm.json"].startswith("invalid JSON") and len(issues) == 3


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_missing_path_raises_invalid_input(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nope" / "inventory.yml"
    with pytest.raises(InvalidInput) as err:
        PARSERS[fmt](missing)
    assert str(missing) in err.value.detail and "\n" not in err.value.detail


@pytest.mark.parametrize("fmt", ["splunk-es", "csv", "layer"])
def test_file_parsers_refuse_a_folder(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(InvalidInput) as err:
        PARSERS[fmt](tmp_path)
    assert "directory" in err.value.detail and str(tmp_path) in err.value.detail


def test_single_file_problems_are_issues_not_exceptions(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes("name,technique\nRègle,T1003\n".encode("latin-1"))
    (tmp_path / "empty.json").write_text("")
    assert parse_csv(tmp_path / "x.csv").issues[0].message.startswith("not UTF-8")
    assert parse_layer(tmp_path / "empty.json").issues[0].message == "empty file"
    assert parse_splunk_es(tmp_path / "empty.json").issues[0].message == "empty file"


# --------------------------------------------------------------------------- registry, summary


def test_parsers_registry_and_dispatch(tmp_path: Path) -> None:
    assert set(PARSERS) == {"sigma", "elastic", "splunk", "splunk-es", "sentinel", "csv", "layer"}
    (tmp_path / "r.yml").write_text(_sigma("one"))
    assert parse_inventory("Sigma", tmp_path).rules[0].name == "one"
    with pytest.raises(InvalidInput) as err:
        parse_inventory("qradar", tmp_path)
    assert "sigma" in err.value.suggestions


def test_summarize_counts() -> None:
    inv = parse_csv(FIXTURES / "csv" / "inventory.csv")
    s = summarize(inv)
    assert s["rules"] == 7
    assert s["with_techniques"] == 5 and s["unmapped"] == 2
    assert s["techniques"] == 7
    assert s["by_status"] == {
        "active": 3,
        "deprecated": 1,
        "disabled": 1,
        "experimental": 1,
        "test": 1,
    }
    assert s["parse_issues"] == 0 and s["ignored_ids"] == ["T1059.1"]
    assert s["format"] == "csv" and s["root"].endswith("inventory.csv")
    json.dumps(s)  # report-ready
