"""Plans and the report: the remediation plan's tiers, sources and ATT&CK detection approach,
the emulation plan from the real Atomic Red Team index, the assessment report in text,
Markdown and JSON, and the front doors (HTTP and CLI) that serve them.

Facts come from the bundle JSON and the Atomic index files, read here independently.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from loader.atomic import INDEX_CSV, read_index
from loader.inventory.importer import delete_inventory, import_inventory
from queries import coverage as C
from queries import plans as P
from queries.graph import Graph
from queries.settings import Settings

from .bundle_facts import by_stix_id, current_relationships, ext_id, is_current
from .conftest import CORPORA, SESSION_BUNDLES
from .test_cli import run_cli
from .test_coverage import GROUPS, NAMES, threat_model

ART = CORPORA / "atomic-red-team"
CROSSWALK = (
    CORPORA / "elastic" / "detection_rules" / "etc" / "attack-version-maps"
    / "attack_v18_to_v19.yaml"
)  # fmt: skip
PREFIX = "t-plan-"
INV = PREFIX + "half"

# --------------------------------------------------------------------------- facts


def detection_facts() -> dict[str, dict[str, set[str]]]:
    """Technique id -> {strategies, analytics, log source names} from the bundles."""
    out: dict[str, dict[str, set[str]]] = {}
    for path in SESSION_BUNDLES:
        objs = by_stix_id(path)
        for r in current_relationships(path):
            src = objs[r["source_ref"]]
            if r["relationship_type"] != "detects" or src["type"] != "x-mitre-detection-strategy":
                continue
            f = out.setdefault(
                ext_id(objs[r["target_ref"]]),
                {"strategies": set(), "analytics": set(), "log_sources": set()},
            )
            f["strategies"].add(ext_id(src))
            for a in src.get("x_mitre_analytic_refs", []):
                if a in objs and is_current(objs[a]):
                    f["analytics"].add(ext_id(objs[a]))
                    for ref in objs[a].get("x_mitre_log_source_references", []):
                        f["log_sources"].add(ref["name"])
    return out


def art_index_raw() -> tuple[dict[str, list[dict[str, str]]], int]:
    """Technique id -> unique tests (by GUID) from index.csv; and the raw row count."""
    rows = list(csv.DictReader((ART / INDEX_CSV).read_text(encoding="utf-8").splitlines()))
    out: dict[str, dict[str, dict[str, str]]] = {}
    for r in rows:
        out.setdefault(r["Technique #"], {})[r["Test GUID"]] = r
    return {t: list(v.values()) for t, v in out.items()}, len(rows)


def art_platforms(technique: str) -> dict[str, set[str]]:
    data = yaml.safe_load((ART / "atomics" / technique / f"{technique}.yaml").read_text())
    return {
        t["auto_generated_guid"]: {p.strip().lower() for p in t["supported_platforms"]}
        for t in data["atomic_tests"]
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def half(graph: Graph, tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    tm = threat_model(GROUPS)
    chosen = set(sorted(tm)[::2])
    path = tmp_path_factory.mktemp("plan") / "half.txt"
    path.write_text("\n".join(sorted(chosen)) + "\n", encoding="utf-8")
    import_inventory(graph, "csv", path, name=INV, crosswalk=CROSSWALK)
    yield chosen
    for r in graph.read(
        "MATCH (i:Inventory) WHERE i.name STARTS WITH $p RETURN i.name AS n", p=PREFIX
    ):
        delete_inventory(graph, r["n"])


# --------------------------------------------------------------------------- remediation plan


def test_plan_tiers_follow_the_gap_ranking(graph: Graph, half: set[str]) -> None:
    ga = C.gap_analysis(graph, actors=NAMES, inventory=INV)
    plan = P.remediation_plan(graph, actors=NAMES, inventory=INV, per_tier=4)
    gaps = ga.gap_techniques()
    tiers = [plan.priority_1, plan.priority_2, plan.priority_3]
    assert [g.technique for t in tiers for g in t.gaps] == [g.technique_id for g in gaps[:12]]
    assert plan.beyond_90_days == [g.technique_id for g in gaps[12:]]
    assert [t.timeframe for t in tiers] == ["30 days", "60 days", "90 days"]
    assert plan.current_coverage_pct == ga.coverage_pct
    n = ga.covered
    for t in tiers:
        assert t.coverage_before_pct == round(100 * n / ga.total, 1)
        n += len(t.gaps)
        assert t.coverage_after_pct == round(100 * n / ga.total, 1)
    assert plan.target_coverage_pct == round(100 * n / ga.total, 1)


def test_plan_detection_approach_and_effort_from_attack(graph: Graph, half: set[str]) -> None:
    plan = P.remediation_plan(graph, actors=NAMES, inventory=INV, per_tier=10)
    facts = detection_facts()
    for tier in (plan.priority_1, plan.priority_2, plan.priority_3):
        for g in tier.gaps:
            f = facts.get(g.technique, {"strategies": set(), "analytics": set(),
                                         "log_sources": set()})  # fmt: skip
            assert {s.strategy_id for s in g.detection_approach} == f["strategies"]
            assert {a.analytic_id for s in g.detection_approach for a in s.analytics} == f[
                "analytics"
            ]
            assert {ls.split(" (")[0] for ls in g.log_sources} == f["log_sources"]
            assert g.effort in ("low", "medium", "high") and g.effort_basis
            if not f["analytics"]:
                assert g.effort in ("medium", "high")
            assert g.current in ("gap",) or g.current.startswith("partial")


def test_plan_yaml_has_the_seed_shape(graph: Graph, half: set[str]) -> None:
    plan = P.remediation_plan(graph, actors=NAMES, inventory=INV, per_tier=3)
    doc = yaml.safe_load(P.plan_yaml(plan))["remediation_plan"]
    assert list(doc)[-4:] == ["priority_1", "priority_2", "priority_3", "beyond_90_days"]
    assert doc["coverage"]["current_pct"] == plan.current_coverage_pct
    g = doc["priority_1"]["gaps"][0]
    for key in ("technique", "name", "data_sources", "log_sources", "detection_approach",
                "effort", "effort_basis", "current", "target", "why"):  # fmt: skip
        assert key in g
    assert doc["priority_1"]["timeframe"] == "30 days"
    assert "None" not in json.dumps(g["log_sources"])  # ATT&CK's literal 'None' channels


# --------------------------------------------------------------------------- emulation


def test_atomic_index_keys_tests_on_guid() -> None:
    raw, rows = art_index_raw()
    index = read_index(ART)
    assert index.test_count == sum(len(v) for v in raw.values()) < rows  # rows repeat per tactic
    assert set(index.techniques()) == set(raw)
    t = index.for_technique("T1059.001")
    assert [x.test_number for x in t] == sorted(int(r["Test #"]) for r in raw["T1059.001"])
    filled = index.tests_for(["T1059.001"])["T1059.001"]
    plats = art_platforms("T1059.001")
    assert all(set(x.platforms) == plats[x.guid] for x in filled)


def test_emulation_plan_for_the_gaps(graph: Graph, half: set[str]) -> None:
    index = read_index(ART)
    raw, _ = art_index_raw()
    em = P.emulation_plan(graph, actors=NAMES, inventory=INV, atomics=index, platforms=["windows"])
    ga = C.gap_analysis(graph, actors=NAMES, inventory=INV, platforms=["windows"])
    gaps = [g.technique_id for g in ga.gap_techniques()]
    assert em.gaps == len(gaps)
    assert sorted([t.technique_id for t in em.techniques] + em.without_tests) == sorted(gaps)
    assert em.techniques, "some gaps have Atomic tests"
    forward = {
        k: v["id"]
        for b in ("techniques", "subtechniques")
        for k, v in yaml.safe_load(CROSSWALK.read_text())[b].items()
        if v
    }
    for t in em.techniques:
        ids = [t.technique_id] + ([forward[t.technique_id]] if t.technique_id in forward else [])
        assert t.atomic_ids == ids
        for x in t.tests:
            assert x.atomic_technique in ids
            assert x.guid in {r["Test GUID"] for r in raw[x.atomic_technique]}
            assert "windows" in art_platforms(x.atomic_technique)[x.guid]
            assert x.invoke == f"Invoke-AtomicTest {x.atomic_technique} -TestGuids {x.guid}"
        for line in t.invoke:
            assert re.fullmatch(r"Invoke-AtomicTest T\d{4}(\.\d{3})? -TestNumbers \d+(,\d+)*", line)
    for tid in em.without_tests:
        ids = [tid] + ([forward[tid]] if tid in forward else [])
        assert all("windows" not in p for i in ids if i in raw for p in art_platforms(i).values())
    # The crosswalk at work: a v18 gap whose tests Atomic files under its v19 id.
    if "T1562.001" in gaps:
        t = next(t for t in em.techniques if t.technique_id == "T1562.001")
        assert any(x.atomic_technique == "T1685" for x in t.tests)


# --------------------------------------------------------------------------- report


def test_report_numbers_come_from_the_services(graph: Graph, half: set[str]) -> None:
    ga = C.gap_analysis(graph, actors=NAMES, inventory=INV)
    rep = P.assessment_report(graph, actors=NAMES, inventory=INV, top=5)
    assert (rep.total, rep.covered, rep.gaps, rep.coverage_pct) == (
        ga.total, ga.covered, ga.gaps, ga.coverage_pct,
    )  # fmt: skip
    assert [g.technique_id for g in rep.top_gaps] == [
        g.technique_id for g in ga.gap_techniques()[:5]
    ]
    text = P.render_text(rep)
    assert text.startswith("THREAT MODEL ASSESSMENT\n")
    assert f"Covered:              {ga.covered} ({ga.coverage_pct:g}%)" in text
    for row in ga.tactics:
        if row.total:
            assert re.search(
                rf"{re.escape(row.tactic)} +{row.bar} +\d+% \({row.covered}/{row.total}\)", text
            ), row.tactic
    for a in ga.actors:
        assert f"{a.name} ({a.group_id})" in text
    assert "RECOMMENDATION" in text and rep.recommendation
    md = P.render_markdown(rep)
    assert md.startswith("# Threat Model Assessment") and "| Tactic |" in md
    assert json.loads(rep.model_dump_json())["coverage_pct"] == ga.coverage_pct


# --------------------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def client(graph: Graph, settings: Settings, half: set[str]) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"ttpgraph_api_auth": False}))
    with TestClient(app) as c:
        yield c


def params(**extra: Any) -> list[tuple[str, Any]]:
    return [("actor", n) for n in NAMES] + [("inventory", INV)] + list(extra.items())


def test_http_upload_analyses_and_errors(client: TestClient, graph: Graph, tmp_path: Path) -> None:
    body = "rule,technique\nPowerShell,T1059.001\nLSASS,T1003.001\n"
    r = client.post(
        "/api/v1/inventories",
        files={"file": ("rules.csv", body.encode(), "text/csv")},
        data={"format": "csv", "name": PREFIX + "upload", "exclude_status": ["deprecated"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rules"] == 2 and r.json()["mapped"] == 2
    assert PREFIX + "upload" in [i["name"] for i in client.get("/api/v1/inventories").json()]
    gaps = client.get("/api/v1/gaps", params=params())
    assert gaps.status_code == 200
    ga = C.gap_analysis(graph, actors=NAMES, inventory=INV)
    assert gaps.json()["covered"] == ga.covered and gaps.json()["total"] == ga.total
    # the route sends the service's data as it is (orjson): the model's JSON, in its order
    assert gaps.json() == ga.model_dump(mode="json")
    assert list(gaps.json()["techniques"][0]) == list(ga.techniques[0].model_dump())
    tel = client.get("/api/v1/telemetry", params=params(level="data_component", limit=3)).json()
    assert tel["level"] == "data_component" and len(tel["steps"]) <= 3
    plan = client.get("/api/v1/plan", params=params(format="yaml", per_tier=2))
    assert plan.headers["content-type"].startswith("application/yaml")
    assert "priority_1" in yaml.safe_load(plan.text)["remediation_plan"]
    rep = client.get("/api/v1/report", params=params(format="markdown"))
    assert rep.headers["content-type"].startswith("text/markdown")
    assert "## Coverage by tactic" in rep.text
    txt = client.get("/api/v1/report", params=params())
    assert txt.text.startswith("THREAT MODEL ASSESSMENT")
    em = client.get("/api/v1/emulation", params=params(platform="windows", limit=5))
    assert em.status_code in (200, 404)
    # Errors: problem+json, 4xx, naming what is wrong.
    missing = client.get("/api/v1/gaps", params=[("actor", "APT29"), ("inventory", "nope")])
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "nope" in missing.json()["detail"]
    bad = client.post(
        "/api/v1/inventories",
        files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
        data={"format": "qradar", "name": PREFIX + "bad"},
    )
    assert bad.status_code == 422
    empty = client.post(
        "/api/v1/inventories",
        files={"file": ("x.yml", b"not: a rule\n", "text/yaml")},
        data={"format": "sigma", "name": PREFIX + "bad"},
    )
    assert empty.status_code == 422 and "no sigma rules" in empty.json()["detail"]
    assert client.delete(f"/api/v1/inventories/{PREFIX}upload").json()["rules"] == 2
    assert client.delete(f"/api/v1/inventories/{PREFIX}upload").status_code == 404


def test_http_upload_an_archive(client: TestClient) -> None:
    import zipfile

    buf = io.BytesIO()
    rules = sorted((CORPORA / "sigma" / "rules" / "windows" / "powershell").rglob("*.yml"))[:20]
    with zipfile.ZipFile(buf, "w") as zf:
        for p in rules:
            zf.write(p, f"sigma/{p.name}")
        zf.writestr("../evil.yml", "title: x\n")
    r = client.post(
        "/api/v1/inventories",
        files={"file": ("rules.zip", buf.getvalue(), "application/zip")},
        data={"format": "sigma", "name": PREFIX + "zip"},
    )
    assert r.status_code == 422 and "unsafe path" in r.json()["detail"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in rules:
            zf.write(p, f"sigma/{p.name}")
    r = client.post(
        "/api/v1/inventories",
        files={"file": ("rules.zip", buf.getvalue(), "application/zip")},
        data={"format": "sigma", "name": PREFIX + "zip"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rules_read"] == len(rules)


# --------------------------------------------------------------------------- CLI


def test_cli_commands(settings: Settings, half: set[str], tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("T1059.001\nT1003\n", encoding="utf-8")
    r = run_cli(settings, "inventory", "import", "csv", str(path), "--name", PREFIX + "cli",
                "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rules"] == 2
    r = run_cli(settings, "gaps", *NAMES, "-i", INV, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total"] == len(threat_model(GROUPS))
    r = run_cli(settings, "gaps", *NAMES, "-i", INV)
    assert r.returncode == 0 and "Gaps by priority" in r.stdout and "█" in r.stdout
    r = run_cli(settings, "report", *NAMES, "-i", INV, "--top", "3")
    assert r.returncode == 0 and r.stdout.startswith("THREAT MODEL ASSESSMENT")
    r = run_cli(settings, "plan", *NAMES, "-i", INV, "--per-tier", "2")
    assert r.returncode == 0 and "priority_3" in yaml.safe_load(r.stdout)["remediation_plan"]
    r = run_cli(settings, "telemetry", *NAMES, "-i", INV, "--format", "csv", "--limit", "2")
    assert r.returncode == 0 and r.stdout.startswith("rank,source")
    r = run_cli(settings, "emulation", *NAMES, "-i", INV, "--atomics", str(ART), "-p", "windows",
                "--limit", "5", "--format", "script")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert all(
        line.startswith(("#", "Invoke-AtomicTest")) for line in r.stdout.splitlines() if line
    )
    r = run_cli(settings, "gaps", "APT29", "-i", "no-such-inventory")
    assert r.returncode == 1 and "no inventory named" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(settings, "inventory", "delete", PREFIX + "cli", "--yes")
    assert r.returncode == 0
    for cmd in (["inventory", "import"], ["gaps"], ["telemetry"], ["plan"], ["emulation"],
                ["report"]):  # fmt: skip
        assert run_cli(settings, *cmd, "--help").returncode == 0
