"""Saved threat models and how a release changes their coverage, on the session graph.

Facts come from the bundles (``bundle_facts``: the actors' techniques, directly and through
campaigns, straight from the JSON) and from the gap analysis the graph answers: the coverage a
diff computes for a release must be the coverage ``gaps`` reports for the loaded one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from loader.diff import diff_releases, snapshot_from_source
from loader.inventory.importer import delete_inventory, import_inventory
from loader.inventory.planner import ImportOptions
from queries import coverage as C
from queries import releases as R
from queries import threat_models as TM
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph
from queries.layers import validate_layer
from queries.settings import Settings

from .bundle_facts import by_stix_id, ext_id, group_technique_paths, objects
from .conftest import ENTERPRISE, ENTERPRISE_17, ICS
from .test_cli import run_cli
from .test_inventory_import import CROSSWALK, SIGMA
from .test_releases import _edited_release

PREFIX = "t-tm-"
GROUPS = ["G0016", "G0007", "G0046", "G0032", "G0102"]


def _models(graph: Graph) -> int:
    return graph.read("MATCH (m:$('ThreatModel')) RETURN count(m) AS n")[0]["n"]


def _csv_inventory(graph: Graph, tmp: Path, name: str, tags: list[str], **opts: Any) -> None:
    path = tmp / f"{name}.csv"
    rows = ["Rule Name,Technique,ID"] + [f"Rule {t},{t},R-{i:03d}" for i, t in enumerate(tags)]
    path.write_text("\n".join(rows) + "\n")
    import_inventory(graph, "csv", path, name=name, options=ImportOptions(**opts))


@pytest.fixture(scope="module")
def cleanup(graph: Graph):
    yield
    for m in TM.list_threat_models(graph):
        if m.name.startswith(PREFIX):
            TM.delete_threat_model(graph, m.name)
    for r in graph.read("MATCH (i:Inventory) RETURN i.name AS n"):
        if r["n"].startswith(PREFIX):
            delete_inventory(graph, r["n"])


@pytest.fixture(scope="module")
def sigma(graph: Graph, cleanup: None) -> str:
    name = PREFIX + "sigma"
    import_inventory(graph, "sigma", SIGMA, name=name, crosswalk=CROSSWALK)
    return name


# ----------------------------------------------------------------------- bundle facts


def _model_facts(path: Path, groups: list[str]) -> dict[str, set[str]]:
    """Technique -> the groups using it (directly or through a campaign) in one bundle."""
    out: dict[str, set[str]] = {}
    for g in groups:
        kinds = group_technique_paths([path], g)
        for t in set(kinds["direct"]) | set(kinds["campaign"]):
            out.setdefault(t, set()).add(g)
    return out


def _resolver(path: Path):
    """A tag -> the current technique it is (or was revoked into) in one bundle, from the JSON."""
    objs = by_stix_id(path)
    by_ext = {}
    for o in objs.values():
        if o["type"] == "attack-pattern" and ext_id(o):
            cur = not o.get("revoked") and not o.get("x_mitre_deprecated")
            if ext_id(o) not in by_ext or cur:
                by_ext[ext_id(o)] = o
    revoked_by = {
        r["source_ref"]: r["target_ref"]
        for r in objects(path)
        if r["type"] == "relationship" and r["relationship_type"] == "revoked-by"
    }

    def resolve(tag: str) -> str | None:
        o = by_ext.get(tag)
        for _ in range(5):
            if o is None:
                return None
            if not o.get("revoked") and not o.get("x_mitre_deprecated"):
                return ext_id(o)
            if not o.get("revoked"):
                return None
            o = objs.get(revoked_by.get(o["id"], ""))
        return None

    return resolve


# ----------------------------------------------------------------------------- storage


def test_save_list_show_replace_delete(graph: Graph, sigma: str) -> None:
    before = _models(graph)
    m = TM.save_threat_model(
        graph,
        name=PREFIX + "crud",
        actors={"apt29": 2, "Fancy Bear": 1},
        inventory=sigma,
        platforms=["Windows"],
        domain="enterprise",
        description="who we defend against",
    )
    assert [(a.group_id, a.name, a.weight) for a in m.actors] == [
        ("G0016", "APT29", 2.0),
        ("G0007", "APT28", 1.0),
    ]
    assert (m.inventory, m.platforms, m.domain) == (sigma, ["windows"], "enterprise-attack")
    assert m.created and m.created == m.updated
    assert _models(graph) == before + 1
    links = (
        "MATCH (:ThreatModel {name: $n})-[r]->(x) "
        "RETURN type(r) AS t, x.attack_id AS a, x.name AS x"
    )
    got = {(r["t"], r["a"] or r["x"]) for r in graph.read(links, n=PREFIX + "crud")}
    assert got == {("INCLUDES", "G0016"), ("INCLUDES", "G0007"), ("HELD_AGAINST", sigma)}
    assert PREFIX + "crud" in [x.name for x in TM.list_threat_models(graph)]
    again = TM.save_threat_model(graph, name=PREFIX + "crud", actors=["G0046"], inventory=sigma)
    assert [a.group_id for a in again.actors] == ["G0046"] and again.created == m.created
    assert again.platforms == [] and again.domain is None
    assert _models(graph) == before + 1
    got = {(r["t"], r["a"] or r["x"]) for r in graph.read(links, n=PREFIX + "crud")}
    assert got == {("INCLUDES", "G0046"), ("HELD_AGAINST", sigma)}
    TM.delete_threat_model(graph, PREFIX + "crud")
    assert _models(graph) == before
    with pytest.raises(NotFound, match="no threat model named"):
        TM.get_threat_model(graph, PREFIX + "crud")


def test_bad_models_write_nothing(graph: Graph, sigma: str) -> None:
    before = _models(graph)
    with pytest.raises(NotFound):
        TM.save_threat_model(graph, name=PREFIX + "bad", actors=["APT29", "No Such Actor Xyz"])
    with pytest.raises(NotFound, match="no inventory named"):
        TM.save_threat_model(graph, name=PREFIX + "bad", actors=["APT29"], inventory="nope-x")
    with pytest.raises(InvalidInput, match="name is empty"):
        TM.save_threat_model(graph, name="  ", actors=["APT29"])
    with pytest.raises(InvalidInput, match="domain"):
        TM.save_threat_model(graph, name=PREFIX + "bad", actors=["APT29"], domain="cloud")
    with pytest.raises(InvalidInput, match="at least one actor"):
        TM.save_threat_model(graph, name=PREFIX + "bad", actors=[])
    assert _models(graph) == before
    no_inv = TM.save_threat_model(graph, name=PREFIX + "noinv", actors=["APT29"])
    with pytest.raises(InvalidInput, match="names no inventory"):
        no_inv.gap_args()


# ------------------------------------------------------- coverage in a release = the gaps


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"include_software": True},
        {"platforms": ["Linux", "macOS"]},
        {"partial_counts_as_covered": True},
    ],
    ids=["default", "software", "platforms", "partial-covered"],
)
def test_release_coverage_equals_the_gap_analysis(
    graph: Graph, sigma: str, options: dict[str, Any]
) -> None:
    model = TM.save_threat_model(
        graph, name=PREFIX + "eq", actors=GROUPS, inventory=sigma, domain="enterprise", **options
    )
    ga = C.gap_analysis(graph, **model.gap_args())
    want = {
        t.technique_id: "partial" if t.partial else "covered" if t.covered else "gap"
        for t in ga.techniques
    }
    assert len(want) > 100 and "partial" in want.values()
    rules = R.inventory_rules(graph)
    opts = R.inventory_options(graph, sigma)
    assert opts is not None and opts.crosswalk  # the crosswalk pairs come back from the graph
    mine = [r for r in rules if r.inventory == sigma]
    from_graph = R.snapshot_from_graph(graph, domain="enterprise")
    from_bundle = snapshot_from_source(str(ENTERPRISE))
    for snap in (from_graph, from_bundle):
        got, users, _, notes = R.judge_model(R.ReleaseIndex(snap), model, mine, opts, {})
        assert got == want, snap.source
        assert not notes
        assert {t: sorted(u) for t, u in users.items()} == {
            t.technique_id: t.actors for t in ga.techniques
        }
    same = R.model_change(model, from_graph, from_bundle, rules=rules, options=opts)
    assert same.techniques == [] and same.tactics == [] and same.change_pct == 0
    assert same.new is not None and same.new.techniques == ga.total
    assert (same.new.covered, same.new.partial, same.new.gaps) == (ga.covered, ga.partial, ga.gaps)


# ----------------------------------------------------------------- a release's changes


def test_edited_release_changes_coverage_as_the_bundles_say(
    graph: Graph, cleanup: None, tmp_path: Path
) -> None:
    edited, picks = _edited_release(tmp_path)
    apt29 = _model_facts(ENTERPRISE, ["G0016"])
    # Actors: APT29 plus a group using each technique the edit retires.
    base = _model_facts(ENTERPRISE, _all_groups(ENTERPRISE))
    extra = sorted({min(base[picks[k]]) for k in ("revoked", "deprecated", "removed")
                    if picks[k] in base})  # fmt: skip
    groups = sorted({"G0016", *extra})
    assert len(groups) >= 2
    tags = sorted(apt29)[:15] + [picks["revoked"], picks["deprecated"], picks["removed"]]
    inv = PREFIX + "edit"
    _csv_inventory(graph, tmp_path, inv, tags, parent_coverage="none", subtechnique_coverage="none")
    model = TM.save_threat_model(graph, name=PREFIX + "edit", actors=groups, inventory=inv)

    ics_only = TM.save_threat_model(graph, name=PREFIX + "ics-only", actors=["G0034"], domain="ics")
    d = diff_releases(graph, old=str(ENTERPRISE), new=str(edited), impact=False)
    assert d.threat_models is not None
    got = next(m for m in d.threat_models if m.name == model.name)
    # every saved model is compared but those filtered to another domain, which are said
    assert ics_only.name not in [m.name for m in d.threat_models]
    assert f"threat model {ics_only.name!r} is for ics-attack: not compared" in d.notes

    def side(path: Path) -> tuple[dict[str, set[str]], set[str]]:
        users = _model_facts(path, groups)
        resolve = _resolver(path)
        return users, set(users) & {r for r in map(resolve, tags) if r}

    o_users, o_cov = side(ENTERPRISE)
    n_users, n_cov = side(edited)
    assert got.old is not None and got.new is not None
    assert (got.old.techniques, got.old.covered) == (len(o_users), len(o_cov))
    assert (got.new.techniques, got.new.covered) == (len(n_users), len(n_cov))
    assert got.old.partial == got.new.partial == 0
    assert got.change_pct == round(
        round(100 * len(n_cov) / len(n_users), 1) - round(100 * len(o_cov) / len(o_users), 1), 1
    )

    def status(users: dict[str, set[str]], cov: set[str], t: str) -> str | None:
        return None if t not in users else "covered" if t in cov else "gap"

    expect = {
        t: (status(o_users, o_cov, t), status(n_users, n_cov, t))
        for t in set(o_users) | set(n_users)
        if status(o_users, o_cov, t) != status(n_users, n_cov, t)
        or o_users.get(t) != n_users.get(t)
    }
    assert {c.technique_id: (c.old, c.new) for c in got.techniques} == expect
    notes = {c.technique_id: c.note for c in got.techniques}
    # The edit's own stories, told in the notes:
    assert expect[picks["deprecated"]] == ("covered", None)
    assert "deprecated" in notes[picks["deprecated"]]
    assert expect[picks["removed"]] == ("covered", None)
    assert notes[picks["removed"]] == "not in 18.2"
    if picks["revoked"] in base:  # used through a campaign only, attributed or not
        assert expect[picks["revoked"]] == ("covered", None)
        assert notes[picks["revoked"]] == f"revoked into {picks['replacement']} in 18.2"
    assert status(n_users, n_cov, picks["replacement"]) in ("covered", None)
    if picks["group_lost"] in expect:
        assert "no longer used by APT29" in notes[picks["group_lost"]]
    assert "T1680" in n_users
    if "T1680" not in o_users:  # (APT29's SolarWinds campaign uses it in 18.1 already)
        assert "used by APT29" in notes["T1680"]
    # Per-tactic figures add up to the bundles' too.
    for row in got.tactics:
        facts = {}
        for label, users, cov, path in (
            ("old", o_users, o_cov, ENTERPRISE),
            ("new", n_users, n_cov, edited),
        ):
            phases = _phases(path)
            ids = [t for t in users if row.tactic in phases.get(t, [])]
            facts[label] = (len(ids), len([t for t in ids if t in cov]))
        assert (row.old_total, row.old_covered) == facts["old"]
        assert (row.new_total, row.new_covered) == facts["new"]
    md = R.diff_markdown(d)
    assert "## Threat models" in md and f"### {model.name}" in md
    assert R.model_headline(got) in md
    # The change as a layer of the new release: every technique of the model, coloured by its
    # coverage there; what the release changed scores 1.
    layer = R.model_change_layer(got)
    validate_layer(layer)
    entries = {e["techniqueID"]: e for e in layer["techniques"] if "score" in e}
    assert set(entries) == set(n_users)
    assert {t for t, e in entries.items() if e["score"] == 1} == {t for t in expect if t in n_users}
    for t, e in entries.items():
        assert e["color"] == (R.COVERED_COLOR if t in n_cov else R.GAP_COLOR), t
    assert layer["versions"]["attack"] == "18.2"


def _all_groups(path: Path) -> list[str]:
    return sorted(
        ext_id(o)
        for o in objects(path)
        if o["type"] == "intrusion-set" and not o.get("revoked") and ext_id(o)
    )


def _phases(path: Path) -> dict[str, list[str]]:
    return {
        ext_id(o): [p["phase_name"] for p in o.get("kill_chain_phases", [])]
        for o in objects(path)
        if o["type"] == "attack-pattern" and ext_id(o)
    }


# ----------------------------------------------------------------------------- the CLI


def test_cli_save_gaps_and_diff_17_to_18(
    graph: Graph, settings: Settings, sigma: str, tmp_path: Path
) -> None:
    name = PREFIX + "cli"
    p = run_cli(settings, "threat-model", "save", name, "APT29", "FIN7=2", "-i", sigma,
                "--domain", "enterprise", "--format", "json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    saved = json.loads(p.stdout)
    assert [(a["group_id"], a["weight"]) for a in saved["actors"]] == [
        ("G0016", 1.0),
        ("G0046", 2.0),
    ]
    p = run_cli(settings, "threat-model", "list", "--format", "csv")
    assert p.returncode == 0 and name in p.stdout
    p = run_cli(settings, "threat-model", "gaps", name, "--format", "json")
    assert p.returncode == 0, p.stderr
    ga = C.gap_analysis(graph, **TM.get_threat_model(graph, name).gap_args())
    assert (json.loads(p.stdout)["total"], json.loads(p.stdout)["covered"]) == (
        ga.total,
        ga.covered,
    )

    layers = tmp_path / "layers"
    p = run_cli(settings, "diff", str(ENTERPRISE_17), str(ENTERPRISE), "-m", name,
                "-a", "APT28", "-i", sigma, "--no-impact", "--format", "json",
                "--model-layers", str(layers))  # fmt: skip
    assert p.returncode == 0, p.stderr
    models = {m["name"]: m for m in json.loads(p.stdout)["threat_models"]}
    assert set(models) == {name, "ad hoc"}
    assert sorted(f.name for f in layers.iterdir()) == ["ad_hoc.json", f"{name}.json"]
    for f in layers.iterdir():
        validate_layer(json.loads(f.read_text()))
    m = models[name]
    assert (m["old"]["version"], m["new"]["version"]) == ("17.1", "18.1")
    for label, path in (("old", ENTERPRISE_17), ("new", ENTERPRISE)):
        users = _model_facts(path, ["G0016", "G0046"])
        assert m[label]["techniques"] == len(users), label
        assert m[label]["covered"] + m[label]["gaps"] == len(users)
    # 18.1 side of the diff = the gap analysis of the loaded 18.1
    assert (m["new"]["techniques"], m["new"]["covered"]) == (ga.total, ga.covered)
    assert models["ad hoc"]["actors"] == ["APT28 (G0007)"]

    p = run_cli(settings, "threat-model", "report", name, "--format", "markdown")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("# Threat Model Assessment") and "APT29" in p.stdout
    p = run_cli(settings, "diff", str(ENTERPRISE_17), str(ENTERPRISE), "-m", "no-such-model")
    assert p.returncode != 0
    assert "no threat model named 'no-such-model'" in p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2
    p = run_cli(settings, "threat-model", "delete", name)
    assert p.returncode == 0, p.stderr
    p = run_cli(settings, "threat-model", "show", name)
    assert p.returncode != 0 and "no threat model named" in p.stderr


# ----------------------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def clients(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    from api.auth import KeyStore

    keys_file = tmp_path_factory.mktemp("tm-keys") / "api-keys.json"
    store = KeyStore(keys_file)
    _, read_key = store.create(role="read", name="tm-read")
    _, write_key = store.create(role="write", name="tm-write")
    keyed = settings.model_copy(
        update={"ttpgraph_api_auth": True, "ttpgraph_api_keys_file": keys_file}
    )
    app = create_app(keyed)
    with (
        TestClient(app, headers={"X-API-Key": read_key}) as reader,
        TestClient(app, headers={"X-API-Key": write_key}) as writer,
    ):
        yield reader, writer


def test_api_threat_models(graph: Graph, sigma: str, clients) -> None:
    reader, writer = clients
    name = PREFIX + "api"
    url = f"/api/v1/threat-models/{name}"
    body = {"actors": {"APT29": 1, "Lazarus Group": 3}, "inventory": sigma, "domain": "enterprise"}
    assert reader.put(url, json=body).status_code == 403
    before = _models(graph)
    r = writer.put(url, json={**body, "actors": ["APT29", "Nobody At All Qq"]})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem")
    r = writer.put(url, json={**body, "domain": "cloud"})
    assert r.status_code == 422 and "domain" in r.text
    assert _models(graph) == before
    r = writer.put(url, json=body)
    assert r.status_code == 200, r.text
    assert [(a["group_id"], a["weight"]) for a in r.json()["actors"]] == [
        ("G0016", 1.0),
        ("G0032", 3.0),
    ]
    assert name in [m["name"] for m in reader.get("/api/v1/threat-models").json()]
    assert reader.get(url).json()["inventory"] == sigma
    gaps = reader.get(url + "/gaps")
    assert gaps.status_code == 200
    ga = C.gap_analysis(graph, **TM.get_threat_model(graph, name).gap_args())
    assert (gaps.json()["total"], gaps.json()["covered"]) == (ga.total, ga.covered)
    assert gaps.json() == ga.model_dump(mode="json")  # weighted: the weights as floats
    assert list(gaps.json()) == list(ga.model_dump())
    report = reader.get(url + "/report", params={"format": "markdown"})
    assert report.status_code == 200 and "APT29" in report.text
    # The change a release brings to the model, as a layer (here: ICS 18.1 as STIX 2.0 against
    # the loaded ICS 18.1 as STIX 2.1 — the same release, so nothing changed: every score is 0).
    ics = PREFIX + "api-ics"
    assert writer.put(f"/api/v1/threat-models/{ics}", json={"actors": ["Sandworm Team"],
                      "inventory": sigma, "domain": "ics"}).status_code == 200  # fmt: skip
    with ICS.open("rb") as fh:
        r = reader.post(
            f"/api/v1/releases/diff/threat-models/{ics}/layer",
            files={"new": ("ics-attack-18.1.json", fh, "application/json")},
        )
    assert r.status_code == 200, r.text
    layer = r.json()
    validate_layer(layer)
    assert layer["domain"] == "ics-attack"
    scored = [e for e in layer["techniques"] if "score" in e]
    users = _model_facts(ICS, ["G0034"])
    assert {e["techniqueID"] for e in scored} == set(users) and users
    assert {e["score"] for e in scored} == {0}
    with ICS.open("rb") as fh:
        r = reader.post(
            "/api/v1/releases/diff/threat-models/no-such-model/layer",
            files={"new": ("ics-attack-18.1.json", fh, "application/json")},
        )
    assert r.status_code == 404 and "no threat model named" in r.json()["detail"]
    assert reader.delete(url).status_code == 403
    assert writer.delete(url).status_code == 200
    r = reader.get(url)
    assert r.status_code == 404 and r.json()["title"] == "Not found"
    assert writer.delete(url).status_code == 404


def test_names_with_brackets_print_as_text(graph: Graph, settings: Settings, sigma: str) -> None:
    # Rich reads "[...]" as markup: a name like this one used to crash every table (MarkupError).
    name = PREFIX + "red[/team] [bold]x"
    TM.save_threat_model(graph, name=name, actors=["APT29"], inventory=sigma)
    for args in (("threat-model", "list"), ("threat-model", "show", name)):
        p = run_cli(settings, *args)
        assert p.returncode == 0, p.stderr
        assert "red[/team] [bold]x" in p.stdout
    p = run_cli(settings, "gaps", "APT29", "-i", sigma, "--limit", "1")
    assert p.returncode == 0, p.stderr
    assert f"against inventory {sigma}" in p.stdout
