"""Navigator layers computed from the real graph (Enterprise, Mobile and ICS 18.1 side by side).

Every exported layer is checked against facts computed here straight from the bundle JSON:
its ``versions.attack`` is the loaded release, each technique has one entry per tactic it has in
the bundle (and none for a tactic it does not have), sub-techniques show under their parents,
no revoked, deprecated, removed or unknown technique is written, the platform filter is the
union of the techniques' platforms, and the scores are what the analysis says (counted here from
the bundle's relationships). Then each layer is loaded into mitreattack-python's ``Layer``
(silently: it prints its complaints) and drawn to SVG and Excel through its exporters, and the
files are read back cell by cell.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from loader.inventory import parse_layer
from queries import layers as L
from queries.actors import profile_group
from queries.cache import bump_graph_version
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph
from queries.layers.actor_layers import compare_layer_for, profile_layer_for
from queries.layers.detection_layers import (
    PARTIAL_COLOR,
    PARTIAL_LABEL,
    coverage_layer_for,
    gaps_layer_for,
    telemetry_layer_for,
)
from queries.layers.export import LayerExport
from queries.layers.input_layers import combine_layers_for, import_layer_as_actor_set
from queries.layers.render_service import matrix_bundle, render_layer

from .bundle_facts import by_stix_id, current_relationships, ext_id, group_technique_paths, objects
from .conftest import CORPORA, ENTERPRISE, ICS_21, MOBILE

ART_DIR = CORPORA / "atomic-red-team" / "atomics" / "Indexes" / "Attack-Navigator-Layers"
ART_LAYERS = sorted(ART_DIR.glob("*.json"))
BUNDLES = {"enterprise-attack": ENTERPRISE, "mobile-attack": MOBILE, "ics-attack": ICS_21}
COMPARED = ["G0016", "G0007", "G0046"]  # APT29, APT28, FIN7


# ---------------------------------------------------------------- facts from the bundles


@lru_cache(maxsize=8)
def techniques_of(bundle: Path) -> dict[str, dict[str, Any]]:
    """Every technique of a bundle: name, tactics, platforms, parent, current or not."""
    objs = by_stix_id(bundle)
    parent = {
        r["source_ref"]: r["target_ref"]
        for r in objects(bundle)
        if r["type"] == "relationship" and r["relationship_type"] == "subtechnique-of"
    }
    out: dict[str, dict[str, Any]] = {}
    for o in objs.values():
        if o["type"] != "attack-pattern" or ext_id(o) is None:
            continue
        out[ext_id(o)] = {
            "name": o["name"],
            "tactics": [p["phase_name"] for p in o.get("kill_chain_phases", [])],
            "platforms": o.get("x_mitre_platforms", []),
            "parent": ext_id(objs[parent[o["id"]]]) if o["id"] in parent else None,
            "current": not o.get("revoked") and not o.get("x_mitre_deprecated"),
            "revoked": bool(o.get("revoked")),
            "deprecated": bool(o.get("x_mitre_deprecated")),
        }
    return out


def current_of(bundle: Path) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in techniques_of(bundle).items() if v["current"]}


@lru_cache(maxsize=8)
def release_of(bundle: Path) -> str:
    """The release: the 2.1 bundle's x-mitre-collection says it; 2.0 bundles only by name."""
    for o in objects(bundle):
        if o["type"] == "x-mitre-collection":
            return str(o["x_mitre_version"])
    found = re.search(r"-(\d+\.\d+)\.json$", bundle.name)
    assert found, bundle
    return found.group(1)


@lru_cache(maxsize=8)
def tactic_names(bundle: Path) -> dict[str, str]:
    return {
        o["x_mitre_shortname"]: o["name"]
        for o in objects(bundle)
        if o["type"] == "x-mitre-tactic" and not o.get("x_mitre_deprecated")
    }


def replacement_of(bundle: Path, technique_id: str) -> str | None:
    objs = by_stix_id(bundle)
    sid = next(
        k for k, o in objs.items() if o["type"] == "attack-pattern" and ext_id(o) == technique_id
    )
    for r in objects(bundle):
        if (
            r["type"] == "relationship"
            and r["relationship_type"] == "revoked-by"
            and r["source_ref"] == sid
        ):
            return ext_id(objs[r["target_ref"]])
    return None


def direct_and_campaign(bundle: Path, group: str) -> set[str]:
    paths = group_technique_paths([bundle], group)
    return set(paths["direct"]) | set(paths["campaign"])


# ---------------------------------------------------------------- checking a layer


def cells_of(layer: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(technique, tactic) -> the entry that applies there, as the Navigator reads a layer."""
    assert all("tactic" in e for e in layer["techniques"]), "an entry without a tactic"
    return {(e["techniqueID"], e["tactic"]): e for e in layer["techniques"]}


def check_layer(layer: dict[str, Any], domain: str) -> dict[str, dict[str, Any]]:
    """The rules every exported layer follows; returns technique -> its scored entries' score."""
    bundle = BUNDLES[domain]
    facts = current_of(bundle)
    L.validate_layer(layer)
    assert layer["domain"] == domain
    assert layer["versions"]["layer"] == "4.5"
    assert layer["versions"]["attack"] == release_of(bundle)
    nav = tuple(int(x) for x in layer["versions"]["navigator"].split("."))
    assert nav >= (4, 9, 0)
    cells = cells_of(layer)
    assert len(cells) == len(layer["techniques"])  # no (technique, tactic) twice
    scored: dict[str, dict[str, Any]] = {}
    for (tid, tactic), entry in cells.items():
        assert tid in facts, f"{tid} is not a current {domain} technique"
        assert tactic in facts[tid]["tactics"], (tid, tactic)
        if "score" in entry:
            scored.setdefault(tid, {})[tactic] = entry["score"]
        if facts[tid]["parent"]:  # shown under its parent, in the same tactic
            parent = cells[(facts[tid]["parent"], tactic)]
            assert parent["showSubtechniques"] is True
    for tid, by_tactic in scored.items():
        assert sorted(by_tactic) == sorted(facts[tid]["tactics"]), tid  # one entry per tactic
        assert len(set(by_tactic.values())) == 1, tid
    platforms = {p for tid in scored for p in facts[tid]["platforms"]}
    if any(not facts[tid]["platforms"] for tid in scored):
        platforms = set()  # a technique with no platform (ICS T0895): no filter, or it hides
    assert set(layer.get("filters", {}).get("platforms", [])) == platforms
    g = layer["gradient"]
    values = [v for by in scored.values() for v in by.values()]
    if values:
        assert g["minValue"] <= min(values) and max(values) <= g["maxValue"]
    return {tid: next(iter(by.values())) for tid, by in scored.items()}


def _rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def expected_fill(entry: dict[str, Any], gradient: dict[str, Any]) -> tuple[int, int, int]:
    """The colour the Navigator gives a cell: its colour, else its score on the gradient (the
    colours evenly spaced from minValue to maxValue, mixed linearly in RGB)."""
    if entry.get("color"):
        return _rgb(entry["color"])
    stops = [_rgb(c) for c in gradient["colors"]]
    lo, hi = gradient["minValue"], gradient["maxValue"]
    at = (min(max(entry["score"], lo), hi) - lo) / (hi - lo) * (len(stops) - 1)
    i = min(int(at), len(stops) - 2)
    f = at - i
    return tuple(round(a + (b - a) * f) for a, b in zip(stops[i], stops[i + 1], strict=True))  # type: ignore[return-value]


def close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


def svg_cells(path: Path) -> dict[str, list[tuple[tuple[int, int, int], str]]]:
    """technique id -> [(fill, displayed text)] for each cell the SVG draws for it."""
    ns = "{http://www.w3.org/2000/svg}"
    cells: dict[str, list[tuple[tuple[int, int, int], str]]] = {}
    for group in ET.parse(path).iter(f"{ns}g"):
        children = list(group)
        for i, child in enumerate(children):
            cls = child.get("class", "")
            if child.tag != f"{ns}rect" or not re.fullmatch(r"T\d{4}(\.\d{3})?", cls):
                continue
            text = children[i + 1]
            pieces = [t.text or "" for t in text.iter(f"{ns}tspan")] or [text.text or ""]
            m = re.fullmatch(r"fill: rgb\((\d+), (\d+), (\d+)\)", child.get("style", ""))
            assert m, child.get("style")
            fill = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            cells.setdefault(cls, []).append((fill, " ".join(pieces)))
    return cells


def xlsx_cells(path: Path) -> dict[tuple[str, str], list[Any]]:
    """(tactic name, cell text) -> cells, a sub-technique column read as its tactic's."""
    import openpyxl

    sheet = openpyxl.load_workbook(path).active
    header = {c.column: c.value for c in sheet[1] if c.value}
    found: dict[tuple[str, str], list[Any]] = {}
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if not isinstance(cell.value, str):
                continue
            column = cell.column
            while column not in header:
                column -= 1
            found.setdefault((header[column], cell.value), []).append(cell)
    return found


def check_mitreattack(
    graph: Graph, layer: dict[str, Any], tmp_path: Path, name: str
) -> tuple[Path, Path]:
    """Loads into mitreattack-python's Layer without a word, round-trips, and draws to SVG and
    Excel with every scored cell where the bundle puts it, in the colour the layer says."""
    from mitreattack.navlayers import Layer

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        loaded = Layer(layer)
    assert hasattr(loaded.layer, "get_dict"), printed.getvalue()
    assert printed.getvalue() == "", printed.getvalue()[:500]
    assert loaded.to_dict() == {k: v for k, v in layer.items() if k != "links"}

    domain = layer["domain"]
    bundle = BUNDLES[domain]
    facts = current_of(bundle)
    cells = cells_of(layer)
    scored = {k: e for k, e in cells.items() if "score" in e or e.get("color")}
    assert scored, "nothing to draw"

    svg = tmp_path / f"{name}.svg"
    report = render_layer(graph, layer=layer, fmt="svg", out_path=svg)
    assert report.messages == [], report.messages
    drawn = svg_cells(svg)
    for tid in {tid for tid, _ in scored}:
        here = drawn.get(tid, [])
        assert len(here) == len(facts[tid]["tactics"]), (tid, here)
        for _fill, text in here:
            assert text == facts[tid]["name"], (tid, text)
        wanted = {expected_fill(e, layer["gradient"]) for (t, _), e in scored.items() if t == tid}
        assert all(any(close(fill, w) for w in wanted) for fill, _ in here), (tid, here, wanted)

    xlsx = tmp_path / f"{name}.xlsx"
    report = render_layer(graph, layer=layer, fmt="xlsx", out_path=xlsx)
    assert not [m for m in report.messages if "shares its name" not in m], report.messages
    sheet = xlsx_cells(xlsx)
    titles = tactic_names(bundle)
    for (tid, tactic), entry in scored.items():
        name_ = facts[tid]["name"]
        namesakes = [
            t
            for t, f in facts.items()
            if f["name"] == name_ and tactic in f["tactics"] and t != tid
        ]
        got = sheet.get((titles[tactic], name_), [])
        assert len(got) == 1 + len(namesakes) or (namesakes and got), (tid, tactic, len(got))
        if namesakes:
            continue  # the exporter finds cells by name: a namesake shares the colour
        cell = got[0]
        assert cell.fill.fill_type == "solid", (tid, tactic)
        assert close(_rgb(cell.fill.fgColor.rgb[-6:]), expected_fill(entry, layer["gradient"]))
    return svg, xlsx


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def render_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Matrix bundles for the renderers go to a temporary cache folder, not the user's."""
    folder = tmp_path_factory.mktemp("ttpgraph-cache")
    old = os.environ.get("TTPGRAPH_CACHE_DIR")
    os.environ["TTPGRAPH_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("TTPGRAPH_CACHE_DIR", None)
    else:
        os.environ["TTPGRAPH_CACHE_DIR"] = old


@pytest.fixture
def flag(graph: Graph) -> Iterator[Any]:
    """Set a property of a graph node for one test, then restore it. Each change bumps the
    graph version, as every ttpgraph write does, so cached answers are not reused across it."""
    done: list[tuple[str, str, Any]] = []

    def write(query: str, **params: Any) -> list[dict[str, Any]]:
        def work(tx: Any) -> list[dict[str, Any]]:
            rows = [r.data() for r in tx.run(query, **params)]
            bump_graph_version(tx)
            return rows

        with graph.driver.session(database=graph.database) as session:
            return session.execute_write(work)

    def set_(attack_id: str, prop: str, value: Any) -> None:
        rows = write(
            f"MATCH (x:Technique {{attack_id: $id}}) WITH x, x.{prop} AS old "
            f"SET x.{prop} = $value RETURN old",
            id=attack_id,
            value=value,
        )
        assert len(rows) == 1, attack_id
        done.append((attack_id, prop, rows[0]["old"]))

    yield set_
    for attack_id, prop, old in reversed(done):
        write(f"MATCH (x:Technique {{attack_id: $id}}) SET x.{prop} = $old", id=attack_id, old=old)


@pytest.fixture(scope="module")
def exports(graph: Graph) -> dict[str, LayerExport]:
    """One export of each kind, from the real graph."""
    out = {
        "profile": profile_layer_for(graph, group="APT29"),
        "compare": compare_layer_for(graph, groups=COMPARED, weights={"APT29": 2}),
        "telemetry": telemetry_layer_for(
            graph, sources=["Process Creation", "DC0064"], level="data_component"
        ),
        "telemetry_actors": telemetry_layer_for(
            graph, sources=["WinEventLog:Security"], level="log_source", actors=["FIN7"]
        ),
    }
    out["combine"] = combine_layers_for(
        graph,
        layers={"a": out["profile"].layer, "b": ART_DIR / "art-navigator-layer-windows.json"},
        expression="a - b",
        keep_zero=False,
    )
    return out


# ---------------------------------------------------------------- every layer renders


@pytest.mark.parametrize("kind", ["profile", "compare", "telemetry", "telemetry_actors", "combine"])
def test_exported_layer_loads_into_mitreattack_and_renders(
    graph: Graph, exports: dict[str, LayerExport], kind: str, tmp_path: Path
) -> None:
    export = exports[kind]
    check_layer(export.layer, "enterprise-attack")
    assert export.filename.endswith(".json") and "/" not in export.filename
    assert export.entries == len(export.layer["techniques"])
    svg, xlsx = check_mitreattack(graph, export.layer, tmp_path, kind)
    assert svg.stat().st_size > 10_000 and xlsx.stat().st_size > 5_000


# ---------------------------------------------------------------- profile


def test_profile_layer_scores_each_tie_from_the_bundle(graph: Graph) -> None:
    """Direct and campaign ties counted straight from the bundle's relationships."""
    export = profile_layer_for(graph, group="Cozy Bear", kinds=["direct", "campaign"])
    scores = check_layer(export.layer, "enterprise-attack")
    paths = group_technique_paths([ENTERPRISE], "G0016")
    direct, campaign = set(paths["direct"]), set(paths["campaign"])
    assert len(direct) > 50 and campaign - direct
    assert scores == {t: 3 if t in direct else 1 for t in direct | campaign}
    cells = cells_of(export.layer)
    for (tid, _), e in cells.items():
        if "score" in e:
            tie = "direct" if tid in direct else "campaign"
            assert e["color"] == L.PATH_COLORS[tie]
            assert {"name": "via", "value": tie} in e["metadata"] or any(
                m["name"] == "via" and m["value"].startswith(tie) for m in e["metadata"]
            )
            assert e["links"][0]["url"] == L.technique_url(tid)
    assert export.layer["legendItems"] == [
        {"label": L.PATH_LABELS[k], "color": L.PATH_COLORS[k]} for k in ("direct", "campaign")
    ]  # only the ties present
    assert export.filename == "profile-g0016-apt29.json"


def test_profile_layer_comment_holds_the_procedure_text(graph: Graph) -> None:
    export = profile_layer_for(graph, group="G0016")
    rel = next(
        r
        for r in current_relationships(ENTERPRISE)
        if r["relationship_type"] == "uses"
        and ext_id(by_stix_id(ENTERPRISE)[r["source_ref"]]) == "G0016"
        and ext_id(by_stix_id(ENTERPRISE)[r["target_ref"]]) == "T1059.001"
    )
    text = re.sub(r"\s*\(Citation:[^)]*\)", "", rel["description"])
    text = re.sub(r"\[([^\]]*)\]\(https?://[^)\s]*\)", r"\1", text).strip()
    entry = cells_of(export.layer)[("T1059.001", "execution")]
    assert f"Direct: {text}" in entry["comment"].splitlines()
    assert "(Citation:" not in entry["comment"] and "](https://" not in entry["comment"]
    assert entry["links"][0] == {"label": "ATT&CK: T1059.001", "url": L.technique_url("T1059.001")}
    # every path of the actor service appears, with the strongest as score
    profile = profile_group(graph, group="G0016")
    best = {
        t.technique_id: max(L.PATH_SCORES[k.value] for k in t.kinds) for t in profile.techniques
    }
    assert check_layer(export.layer, "enterprise-attack") == best


def test_profile_layer_picks_the_domain_and_leaves_the_others_out(graph: Graph) -> None:
    """Sandworm Team uses Enterprise, Mobile and ICS techniques: one layer per domain."""
    ent = profile_layer_for(graph, group="Sandworm Team", kinds=["direct"])
    assert ent.domain == "enterprise-attack"
    scores = check_layer(ent.layer, "enterprise-attack")
    assert set(scores) == set(group_technique_paths([ENTERPRISE], "G0034")["direct"])
    mobile_ids = set(group_technique_paths([MOBILE], "G0034")["direct"])
    ics_ids = set(group_technique_paths([ICS_21], "G0034")["direct"])
    assert mobile_ids and ics_ids
    left = {x.technique_id: x.reason for x in ent.left_out}
    assert set(left) == mobile_ids | ics_ids
    assert all("not enterprise-attack" in r for r in left.values())

    for domain, ids in (("mobile-attack", mobile_ids), ("ics-attack", ics_ids)):
        other = profile_layer_for(graph, group="G0034", kinds=["direct"], domain=domain)
        assert other.domain == domain and other.attack_version == release_of(BUNDLES[domain])
        assert set(check_layer(other.layer, domain)) == ids
        assert other.filename.endswith(f"-{domain.split('-')[0]}.json")


@pytest.mark.parametrize("domain", ["mobile-attack", "ics-attack"])
def test_other_domains_render(graph: Graph, domain: str, tmp_path: Path) -> None:
    export = profile_layer_for(graph, group="G0034", domain=domain)
    check_mitreattack(graph, export.layer, tmp_path, domain)


def test_a_technique_no_longer_in_the_release_is_never_written(graph: Graph, flag) -> None:
    """Mark one of APT29's techniques as removed from the release (as loading a newer release
    does): the path kinds (one definition, the gap analysis's) tie no actor to it, so neither
    the profile nor its layer holds it; a layer someone made that names it leaves it out and
    says why."""
    direct = sorted(group_technique_paths([ENTERPRISE], "G0016")["direct"])
    gone = next(t for t in direct if "." in t)  # a sub-technique: its parent may stay
    flag(gone, "in_release", False)
    assert gone not in {t.technique_id for t in profile_group(graph, group="G0016").techniques}
    export = profile_layer_for(graph, group="G0016")
    assert gone not in {e["techniqueID"] for e in export.layer["techniques"]}
    combined = combine_layers_for(
        graph,
        layers={"a": {"name": "x", "domain": "enterprise-attack",
                      "versions": {"layer": "4.5", "navigator": "5.1.0"},
                      "techniques": [{"techniqueID": gone, "score": 1},
                                     {"techniqueID": "T1110", "score": 2}]}},
        expression="a",
    )  # fmt: skip
    assert {e["techniqueID"] for e in combined.layer["techniques"]} == {"T1110"}
    assert [x.reason for x in combined.left_out] == ["a: no longer in the loaded release"]


# ---------------------------------------------------------------- compare


def test_compare_layer_counts_actors_per_technique_from_the_bundle(
    exports: dict[str, LayerExport],
) -> None:
    export = exports["compare"]
    sets = {g: direct_and_campaign(ENTERPRISE, g) for g in COMPARED}
    weight = {"G0016": 2, "G0007": 1, "G0046": 1}
    every = set().union(*sets.values())
    expected = {t: sum(weight[g] for g in COMPARED if t in sets[g]) for t in every}
    assert check_layer(export.layer, "enterprise-attack") == expected
    common = set.intersection(*sets.values())
    assert common
    for (tid, _), e in cells_of(export.layer).items():
        if "score" not in e:
            continue
        assert (e.get("color") == L.COMMON_COLOR) == (tid in common), tid
        users = {re.sub(r".*\((G\d{4})\)$", r"\1", m["value"]) for m in e["metadata"]
                 if m["name"] == "actor"}  # fmt: skip
        assert users == {g for g in COMPARED if tid in sets[g]}, tid
    assert export.layer["legendItems"] == [
        {"label": "used by all 3 actors", "color": L.COMMON_COLOR}
    ]
    assert export.layer["gradient"]["maxValue"] == 4  # 2 + 1 + 1
    assert export.filename == "compare-g0016-g0007-g0046.json"


def test_compare_layer_with_a_layer_as_one_more_actor(graph: Graph) -> None:
    art = ART_DIR / "art-navigator-layer-linux.json"
    export = compare_layer_for(graph, groups=["APT29"], layers={"atomic linux": art})
    scores = check_layer(export.layer, "enterprise-attack")
    facts = current_of(ENTERPRISE)
    art_ids = art_scored(art) & set(facts)
    apt29 = direct_and_campaign(ENTERPRISE, "G0016")
    assert scores == {t: (t in apt29) + (t in art_ids) for t in apt29 | art_ids}
    not_current = art_scored(art) - set(facts)
    assert not_current  # ATT&CK v19 ids in Atomic Red Team
    assert {x.technique_id for x in export.left_out} == not_current


def test_compare_layer_bad_input(graph: Graph) -> None:
    with pytest.raises(InvalidInput, match="at least 2 actors"):
        compare_layer_for(graph, groups=["APT29"])
    with pytest.raises(InvalidInput, match="not one of the actors"):
        compare_layer_for(graph, groups=["APT29", "FIN7"], weights={"APT28": 2})
    with pytest.raises(InvalidInput, match="weight of 'FIN7'"):
        compare_layer_for(graph, groups=["APT29", "FIN7"], weights={"FIN7": -1})
    with pytest.raises(NotFound, match="no group named"):
        compare_layer_for(graph, groups=["APT29", "Not A Group"])
    with pytest.raises(InvalidInput, match="domain 'mars'"):
        profile_layer_for(graph, group="APT29", domain="mars")


# ---------------------------------------------------------------- telemetry


def telemetry_from_bundle(bundle: Path) -> dict[str, dict[str, set[str]]]:
    """technique -> {"dc": data component ids, "log": log source names} that can show it:
    detection strategy DETECTS technique, its analytics' log source references (v18)."""
    objs = by_stix_id(bundle)
    current = {
        k for k, o in objs.items() if not o.get("revoked") and not o.get("x_mitre_deprecated")
    }
    out: dict[str, dict[str, set[str]]] = {}
    for r in current_relationships(bundle):
        if r["relationship_type"] != "detects":
            continue
        det, tech = objs[r["source_ref"]], objs[r["target_ref"]]
        if det["type"] != "x-mitre-detection-strategy":
            continue
        for a in det.get("x_mitre_analytic_refs", []):
            if a not in current:
                continue
            for ref in objs[a].get("x_mitre_log_source_references", []):
                dc = ref["x_mitre_data_component_ref"]
                if dc not in current:
                    continue
                slot = out.setdefault(ext_id(tech), {"dc": set(), "log": set()})
                slot["dc"].add(ext_id(objs[dc]))
                slot["log"].add(ref["name"])
    return out


def test_telemetry_layer_scores_the_chosen_sources_from_the_bundle(
    exports: dict[str, LayerExport],
) -> None:
    seen = telemetry_from_bundle(ENTERPRISE)
    chosen = {"DC0032", "DC0064"}  # Process Creation (by name), Command Execution (by id)
    expected = {t: len(s["dc"] & chosen) for t, s in seen.items() if s["dc"] & chosen}
    assert len(expected) > 300
    export = exports["telemetry"]
    assert check_layer(export.layer, "enterprise-attack") == expected
    entry = cells_of(export.layer)[("T1059.001", "execution")]
    assert entry["comment"].startswith("Collected: Command Execution (DC0064), Process Creation")


def test_telemetry_layer_for_actors_shows_every_actor_technique(
    exports: dict[str, LayerExport],
) -> None:
    seen = telemetry_from_bundle(ENTERPRISE)
    fin7 = set(group_technique_paths([ENTERPRISE], "G0046")["direct"]) | set(
        group_technique_paths([ENTERPRISE], "G0046")["campaign"]
    )
    expected = {t: int("WinEventLog:Security" in seen.get(t, {"log": set()})["log"]) for t in fin7}
    export = exports["telemetry_actors"]
    assert check_layer(export.layer, "enterprise-attack") == expected
    assert 0 < sum(expected.values()) < len(expected)
    assert export.notes == [
        f"{sum(expected.values())} of {len(expected)} techniques of the actors can be seen"
    ]


def test_telemetry_unknown_source_is_not_found_with_suggestions(graph: Graph) -> None:
    with pytest.raises(NotFound, match="Process Creatoin") as err:
        telemetry_layer_for(graph, sources=["Process Creatoin"])
    assert "Process Creation (DC0032)" in err.value.suggestions
    with pytest.raises(InvalidInput, match="name the sources"):
        telemetry_layer_for(graph, sources=[])


# ---------------------------------------------------------------- layers as input


def art_scored(path: Path) -> set[str]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        t["techniqueID"]
        for t in raw["techniques"]
        if t.get("enabled", True) and (t.get("score") or 0) > 0
    }


@pytest.mark.parametrize("path", ART_LAYERS, ids=[p.stem for p in ART_LAYERS])
def test_atomic_red_team_layers_import_as_actor_sets(graph: Graph, path: Path) -> None:
    found = import_layer_as_actor_set(graph, layer=path, similar=3)
    facts = techniques_of(ENTERPRISE)
    scored = art_scored(path)
    assert found.domain == "enterprise-attack" and found.attack_version == "18.1"
    assert set(found.technique_ids) == {t for t in scored if t in facts and facts[t]["current"]}
    current = {t for t, f in facts.items() if f["current"]}
    assert {x.technique_id for x in found.left_out} == scored - current
    assert found.remapped == {}  # Atomic Red Team names no revoked id
    if found.technique_ids:
        assert found.similar and found.similar[0].jaccard > 0
        top = found.similar[0]
        theirs = direct_and_campaign(ENTERPRISE, top.group_id)
        mine = set(found.technique_ids)
        assert top.jaccard == round(len(mine & theirs) / len(mine | theirs), 4)


@pytest.mark.parametrize("path", ART_LAYERS, ids=[p.stem for p in ART_LAYERS])
def test_atomic_red_team_layers_parse_as_inventories(path: Path) -> None:
    """The inventory path (loader.inventory.parse_layer, shared with the coverage issue)."""
    inv = parse_layer(path)
    assert not inv.issues
    assert {t for r in inv.rules for t in r.techniques} == art_scored(path)


def person_layer() -> dict[str, Any]:
    """A layer as a person may have made it years ago: old versions, revoked, deprecated,
    unknown and other-domain ids, a disabled entry, a zero score, per-tactic entries."""
    facts = techniques_of(ENTERPRISE)
    revoked = "T1086"
    deprecated = next(t for t, f in facts.items() if f["deprecated"] and not f["revoked"])
    assert facts[revoked]["revoked"]
    return {
        "name": "red team 2021",
        "versions": {"layer": "4.2", "navigator": "4.3", "attack": "9"},
        "domain": "enterprise-attack",
        "techniques": [
            {"techniqueID": revoked, "score": 5},
            {"techniqueID": deprecated, "score": 1},
            {"techniqueID": "T9999", "score": 1},
            {"techniqueID": "T1404", "score": 1},  # a Mobile technique
            {"techniqueID": "T1110", "score": 2, "enabled": False},
            {"techniqueID": "T1078", "score": 0},
            {"techniqueID": "T1055.011", "tactic": "defense-evasion", "score": 3},
            {"techniqueID": "T1003.001", "score": 4, "comment": "lsass"},
        ],
    }


def test_a_person_made_layer_imports_with_revoked_ids_remapped(graph: Graph) -> None:
    layer = person_layer()
    deprecated = layer["techniques"][1]["techniqueID"]
    found = import_layer_as_actor_set(graph, layer=json.dumps(layer), similar=5)
    replacement = replacement_of(ENTERPRISE, "T1086")
    assert replacement == "T1059.001"
    assert found.remapped == {"T1086": replacement}
    assert found.technique_ids == sorted([replacement, "T1055.011", "T1003.001"])
    assert {x.technique_id: x.reason for x in found.left_out} == {
        deprecated: "deprecated",
        "T9999": "unknown to the loaded ATT&CK release",
        "T1404": "a mobile-attack technique, not enterprise-attack",
    }
    assert found.layer_attack_version == "9" and found.attack_version == "18.1"
    assert any("navigator" in w for w in found.warnings)
    assert "scored > 0" in found.rule and found.entries_counted == 6
    # min_score counts differently
    found3 = import_layer_as_actor_set(graph, layer=layer, min_score=3, similar=0)
    assert found3.technique_ids == sorted([replacement, "T1055.011", "T1003.001"])
    found5 = import_layer_as_actor_set(graph, layer=layer, min_score=5, similar=0)
    assert found5.technique_ids == [replacement] and found5.similar == []


def test_bad_layers_are_one_line_invalid_input(graph: Graph, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"layer: not JSON"):
        import_layer_as_actor_set(graph, layer=b"{nope")
    with pytest.raises(InvalidInput, match=r"techniques\[0\]: techniqueID missing"):
        import_layer_as_actor_set(
            graph, layer={"name": "x", "domain": "enterprise-attack", "techniques": [{}]}
        )
    with pytest.raises(InvalidInput, match="its domain is enterprise-attack, not mobile-attack"):
        import_layer_as_actor_set(graph, layer=person_layer(), domain="mobile")
    with pytest.raises(InvalidInput, match="cannot be read"):
        import_layer_as_actor_set(graph, layer=tmp_path / "missing.json")


# ---------------------------------------------------------------- combine


def cell_scores(
    layer: dict[str, Any], facts: dict[str, dict[str, Any]]
) -> dict[tuple[str, str], float]:
    """(technique, tactic) -> score, entries without a tactic read into every tactic of the
    technique (as the Navigator does), for current techniques only."""
    own = {(e["techniqueID"], e.get("tactic")) for e in layer["techniques"]}
    out: dict[tuple[str, str], float] = {}
    for e in layer["techniques"]:
        tid = e["techniqueID"]
        if tid not in facts or e.get("score") is None:
            continue
        if e.get("tactic"):
            if e["tactic"] in facts[tid]["tactics"]:
                out[(tid, e["tactic"])] = e["score"]
        else:
            for tactic in facts[tid]["tactics"]:
                if (tid, tactic) not in own:
                    out[(tid, tactic)] = e["score"]
    return out


@pytest.mark.parametrize(
    ("expression", "fn"),
    [
        ("a + b", lambda a, b: a + b),
        ("a - b", lambda a, b: a - b),
        ("min(a, b)", min),
        ("max(a, b)", max),
    ],
)
def test_combine_service_layer_with_an_atomic_red_team_layer(
    graph: Graph, exports: dict[str, LayerExport], expression: str, fn: Any
) -> None:
    facts = current_of(ENTERPRISE)
    a = exports["compare"].layer
    art = ART_DIR / "art-navigator-layer-windows.json"
    b = json.loads(art.read_text())
    export = combine_layers_for(graph, layers={"a": a, "b": art}, expression=expression)
    sa, sb = cell_scores(a, facts), cell_scores(b, facts)
    expected = {k: fn(sa.get(k, 0), sb.get(k, 0)) for k in set(sa) | set(sb)}
    got = {k: e["score"] for k, e in cells_of(export.layer).items() if "score" in e}
    assert got == expected
    check_layer(export.layer, "enterprise-attack")
    unknown = {t["techniqueID"] for t in b["techniques"]} - set(facts)
    assert {x.technique_id for x in export.left_out} == unknown
    assert all(x.reason == "b: unknown to the loaded ATT&CK release" for x in export.left_out)
    assert export.attack_version == "18.1"
    assert any("b (Atomic Red Team (Windows)) was made for ATT&CK 18" in n for n in export.notes)


def test_combine_drop_zero_and_copy_options(graph: Graph, exports: dict[str, LayerExport]) -> None:
    facts = current_of(ENTERPRISE)
    a, b = exports["profile"].layer, exports["compare"].layer
    export = combine_layers_for(
        graph, layers={"a": a, "b": b}, expression="a - b", keep_zero=False,
        comments_from="a", legend_from="a", name="APT29 minus the rest",
    )  # fmt: skip
    sa, sb = cell_scores(a, facts), cell_scores(b, facts)
    expected = {k: sa.get(k, 0) - sb.get(k, 0) for k in set(sa) | set(sb)}
    expected = {k: v for k, v in expected.items() if v != 0}
    cells = cells_of(export.layer)
    assert {k: e["score"] for k, e in cells.items() if "score" in e} == expected
    for k, e in cells.items():
        if "score" in e and k in sa:
            assert e["comment"] == cells_of(a)[k]["comment"]
    assert export.layer["legendItems"] == a["legendItems"]
    assert export.layer["name"] == "APT29 minus the rest"
    assert export.filename == "combine-apt29-minus-the-rest.json"


def test_combine_bad_input(graph: Graph) -> None:
    mobile = {
        "name": "m",
        "domain": "mobile-attack",
        "techniques": [{"techniqueID": "T1404", "score": 1}],
    }
    ent = person_layer()
    with pytest.raises(InvalidInput, match="different domains"):
        combine_layers_for(graph, layers={"a": ent, "b": mobile}, expression="a + b")
    with pytest.raises(InvalidInput, match="unknown variable 'c'"):
        combine_layers_for(graph, layers={"a": ent, "b": ent}, expression="a + c")
    with pytest.raises(InvalidInput, match="function 'exec' is not allowed"):
        combine_layers_for(graph, layers={"a": ent}, expression="exec('1')")
    with pytest.raises(InvalidInput, match=r"^b: layer: not JSON"):
        combine_layers_for(graph, layers={"a": ent, "b": b"{"}, expression="a + b")
    with pytest.raises(InvalidInput, match="unknown option"):
        combine_layers_for(graph, layers={"a": ent}, expression="a", colour_from="a")


# ---------------------------------------------------------------- rendering


def test_matrix_bundle_from_the_graph_is_the_release_matrix(graph: Graph) -> None:
    """The bundle the renderers draw is written from the graph: same tactics in the same order
    and the same current techniques as MITRE's bundle."""
    for domain, bundle in BUNDLES.items():
        path = matrix_bundle(graph, domain)
        assert path == matrix_bundle(graph, domain)  # cached per release
        objs = json.loads(path.read_text())["objects"]
        techniques = {ext_id(o): o for o in objs if o["type"] == "attack-pattern"}
        facts = current_of(bundle)
        assert set(techniques) == {t for t, f in facts.items() if f["tactics"]}
        for tid, o in techniques.items():
            phases = sorted(p["phase_name"] for p in o["kill_chain_phases"])
            assert phases == sorted(facts[tid]["tactics"]), tid
            assert o["x_mitre_platforms"] == facts[tid]["platforms"]
        matrix = next(
            o for o in objects(bundle)
            if o["type"] == "x-mitre-matrix" and not o.get("x_mitre_deprecated")
        )  # fmt: skip
        ours = next(o for o in objs if o["type"] == "x-mitre-matrix")
        assert ours["tactic_refs"] == matrix["tactic_refs"]


def test_rendering_without_mitreattack_says_so(
    graph: Graph, exports: dict[str, LayerExport], monkeypatch, tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mitreattack.navlayers", None)  # import now fails
    with pytest.raises(L.RenderingUnavailable, match=re.escape("pip install -e '.[render]'")):
        render_layer(graph, layer=exports["profile"].layer, fmt="svg", out_path=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_render_rejects_a_bad_format(
    graph: Graph, exports: dict[str, LayerExport], tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="format 'png'"):
        render_layer(graph, layer=exports["profile"].layer, fmt="png", out_path=tmp_path / "x")


# ---------------------------------------------------------------- coverage, gaps, plan

ART_CSV = CORPORA / "atomic-red-team" / "atomics" / "Indexes" / "Indexes-CSV" / "windows-index.csv"
ACTORS = {"APT29": 2.0, "FIN7": 1.0}


@pytest.fixture(scope="module")
def inventories(graph: Graph) -> Iterator[dict[str, str]]:
    """Two real inventories imported through the coverage importer under names of this run:
    Atomic Red Team's Windows test index (CSV, one rule per test GUID) and its all-platform
    Navigator layer. Deleted at the end."""
    from loader.inventory.importer import delete_inventory, import_inventory

    tag = uuid.uuid4().hex[:8]
    names = {"csv": f"test-layers-{tag}-art-csv", "layer": f"test-layers-{tag}-art-layer"}
    try:
        import_inventory(graph, "csv", ART_CSV, name=names["csv"])
        import_inventory(graph, "layer", ART_DIR / "art-navigator-layer.json", name=names["layer"])
        yield names
    finally:
        for name in names.values():
            with contextlib.suppress(NotFound):
                delete_inventory(graph, name)


def resolve_id(tid: str) -> str | None:
    """What the loaded release makes of an id: itself if current, its replacement if revoked."""
    facts = techniques_of(ENTERPRISE)
    seen = 0
    while tid in facts and not facts[tid]["current"] and seen < 5:
        if not facts[tid]["revoked"]:
            return None
        nxt = replacement_of(ENTERPRISE, tid)
        if nxt is None:
            return None
        tid, seen = nxt, seen + 1
    return tid if tid in facts and facts[tid]["current"] else None


def csv_coverage() -> tuple[dict[str, int], set[str]]:
    """From the CSV itself: technique -> number of tests (GUIDs) tagged with it, and the
    techniques only partially covered (parent of a tagged sub-technique, or sub-technique of a
    tagged parent, not tagged itself)."""
    import csv

    tests: dict[str, set[str]] = {}
    with ART_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            tid = resolve_id(row["Technique #"].strip().upper())
            if tid is not None:
                tests.setdefault(tid, set()).add(row["Test GUID"].strip())
    full = {t: len(g) for t, g in tests.items()}
    facts = current_of(ENTERPRISE)
    partial = {facts[t]["parent"] for t in full if facts[t]["parent"]}
    partial |= {t for t, f in facts.items() if f["parent"] in full}
    return full, partial - set(full)


def test_coverage_layer_counts_the_rules_of_each_technique(
    graph: Graph, inventories: dict[str, str], tmp_path: Path
) -> None:
    export = coverage_layer_for(graph, inventory=inventories["csv"])
    full, partial = csv_coverage()
    assert len(full) > 200 and max(full.values()) > 5 and partial
    scores = check_layer(export.layer, "enterprise-attack")
    assert scores == {**full, **dict.fromkeys(partial, 0)}
    for (tid, _), e in cells_of(export.layer).items():
        if tid in partial:
            assert e["color"] == PARTIAL_COLOR and e["comment"].startswith("Partially covered")
        elif tid in full:
            assert "color" not in e
            assert e["comment"].startswith(f"{full[tid]} rule")
            assert len(e["comment"].splitlines()) == full[tid] + 1  # one rule name a line
    assert export.layer["legendItems"] == [{"label": PARTIAL_LABEL, "color": PARTIAL_COLOR}]
    only_full = coverage_layer_for(graph, inventory=inventories["csv"], include_partial=False)
    assert check_layer(only_full.layer, "enterprise-attack") == full
    check_mitreattack(graph, export.layer, tmp_path, "coverage")


def test_atomic_red_team_layer_imported_as_an_inventory(
    graph: Graph, inventories: dict[str, str]
) -> None:
    """The inventory path for layers (loader.inventory.parse_layer through the importer)."""
    path = ART_DIR / "art-navigator-layer.json"
    scored = art_scored(path)
    facts = techniques_of(ENTERPRISE)
    export = coverage_layer_for(graph, inventory=inventories["layer"], include_partial=False)
    expected = {resolve_id(t) for t in scored} - {None}
    assert check_layer(export.layer, "enterprise-attack") == dict.fromkeys(expected, 1)
    unknown = sorted(t for t in scored if t not in facts)
    assert unknown and any(", ".join(unknown[:3]) in n for n in export.notes)


def test_gaps_layer_is_the_actors_techniques_minus_coverage_by_priority(
    graph: Graph, inventories: dict[str, str], tmp_path: Path
) -> None:
    from queries import coverage as C

    export = gaps_layer_for(graph, actors=ACTORS, inventory=inventories["csv"])
    full, _ = csv_coverage()
    threat = direct_and_campaign(ENTERPRISE, "G0016") | direct_and_campaign(ENTERPRISE, "G0046")
    gaps = threat - set(full)
    ga = C.gap_analysis(graph, actors=ACTORS, inventory=inventories["csv"])
    priority = {t.technique_id: t.priority for t in ga.gap_techniques()}
    scores = check_layer(export.layer, "enterprise-attack")
    assert set(scores) == gaps
    assert scores == {t: int(priority[t] + 0.5) for t in gaps}  # whole: see gaps_layer_for
    assert export.layer["sorting"] == 3  # highest priority first
    for (tid, _), e in cells_of(export.layer).items():
        if "score" in e:
            reasons = next(t.reasons for t in ga.gap_techniques() if t.technique_id == tid)
            assert e["comment"] == "\n".join(reasons)
    assert export.filename.startswith("gaps-test-layers-") and "g0016-g0046" in export.filename
    check_mitreattack(graph, export.layer, tmp_path, "gaps")


def test_telemetry_plan_layer_scores_each_gap_by_its_step(
    graph: Graph, inventories: dict[str, str], tmp_path: Path
) -> None:
    from queries import coverage as C

    export = telemetry_layer_for(
        graph, actors=ACTORS, inventory=inventories["csv"], level="data_component"
    )
    plan = C.prioritize_telemetry(
        graph, actors=ACTORS, inventory=inventories["csv"], level="data_component", limit=50
    )
    n = len(plan.steps)
    assert n >= 3
    expected: dict[str, int] = dict.fromkeys(plan.unreachable, 0)
    for step in plan.steps:
        for tid in step.techniques_gained:
            expected.setdefault(tid, n - step.rank + 1)
    full, _ = csv_coverage()
    threat = direct_and_campaign(ENTERPRISE, "G0016") | direct_and_campaign(ENTERPRISE, "G0046")
    assert set(expected) == threat - set(full)  # every gap, once
    assert check_layer(export.layer, "enterprise-attack") == expected
    # each step's data component really shows the techniques it gains (from the bundle)
    seen = telemetry_from_bundle(ENTERPRISE)
    dc_ids = {
        o["name"]: ext_id(o) for o in objects(ENTERPRISE) if o["type"] == "x-mitre-data-component"
    }
    for step in plan.steps:
        for tid in step.techniques_gained:
            assert dc_ids[step.source] in seen[tid]["dc"], (step.source, tid)
    check_mitreattack(graph, export.layer, tmp_path, "plan")


def test_coverage_services_bad_input(graph: Graph, inventories: dict[str, str]) -> None:
    with pytest.raises(NotFound):
        coverage_layer_for(graph, inventory="no such inventory " + uuid.uuid4().hex)
    with pytest.raises(NotFound, match="no group named"):
        gaps_layer_for(graph, actors=["Not A Group"], inventory=inventories["csv"])
