"""Unit tests for queries.layers: building, checking, reading, combining and rendering layers.

Real data comes from ../shared (beside the repository): the ATT&CK 18.1 bundles and the Atomic
Red Team Navigator layers. The rendering tests are skipped only when mitreattack-python (a dev
dependency) is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from queries import layers as L
from queries.errors import InvalidInput

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TTPGRAPH_SHARED_DIR") or REPO.parent / "shared")
ATTACK_DIR = Path(os.environ.get("TTPGRAPH_ATTACK_DIR") or SHARED / "attack")
ENTERPRISE = ATTACK_DIR / "enterprise-attack-18.1.json"
ART_DIR = SHARED / "corpora/atomic-red-team/atomics/Indexes/Attack-Navigator-Layers"

HAVE_MITREATTACK = importlib.util.find_spec("mitreattack") is not None
needs_mitreattack = pytest.mark.skipif(
    not HAVE_MITREATTACK, reason="mitreattack-python (dev dependency) is not installed"
)


# --------------------------------------------------------------------------------------------
# Data from the bundle
# --------------------------------------------------------------------------------------------


def _attack_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references", []):
        if ref.get("source_name") == "mitre-attack":
            return ref.get("external_id")
    return None


def _bundle_facts(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"ATT&CK bundle missing: {path} (set TTPGRAPH_ATTACK_DIR)"
    bundle = json.loads(path.read_text(encoding="utf-8"))
    techniques: dict[str, dict[str, Any]] = {}
    tactics: dict[str, dict[str, str]] = {}
    for obj in bundle["objects"]:
        tid = _attack_id(obj)
        if obj.get("revoked") or obj.get("x_mitre_deprecated") or tid is None:
            continue
        if obj["type"] == "attack-pattern":
            techniques[tid] = {
                "name": obj["name"],
                "tactics": [p["phase_name"] for p in obj.get("kill_chain_phases", [])],
                "platforms": obj.get("x_mitre_platforms", []),
            }
        elif obj["type"] == "x-mitre-tactic":
            tactics[obj["x_mitre_shortname"]] = {"id": tid, "name": obj["name"]}
    return {"techniques": techniques, "tactics": tactics}


@pytest.fixture(scope="module")
def attack() -> dict[str, Any]:
    return _bundle_facts(ENTERPRISE)


def _tactics(attack: dict[str, Any], tid: str) -> list[str]:
    return list(attack["techniques"][tid]["tactics"])


def _platforms(attack: dict[str, Any], tids: list[str]) -> list[str]:
    seen: list[str] = []
    for tid in tids:
        for p in attack["techniques"][tid]["platforms"]:
            if p not in seen:
                seen.append(p)
    return seen


# --------------------------------------------------------------------------------------------
# Builder outputs (with real technique ids and tactics)
# --------------------------------------------------------------------------------------------


def _builder_layers(attack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    t = lambda tid: _tactics(attack, tid)  # noqa: E731
    ids = ["T1059.001", "T1055.011", "T1003", "T1003.001", "T1566.001"]
    common: dict[str, Any] = {"attack_version": "18.1", "platforms": _platforms(attack, ids)}
    out: dict[str, dict[str, Any]] = {}
    out["generic"] = L.build_layer(
        [
            L.LayerTechnique("T1059.001", t("T1059.001"), score=4, comment="ps"),
            L.LayerTechnique(
                "T1055.011",
                t("T1055.011"),
                score=2.0,
                color="#fd8d3c",
                metadata=[("k", "v"), ("n", 3)],
                links=[("doc", "https://example.org/x")],
            ),
            {"technique_id": "T1003", "tactics": t("T1003"), "enabled": False},
        ],
        name="generic",
        description="hand-made",
        legend=[("orange", "#fd8d3c")],
        metadata=[("source", "test")],
        **common,
    )
    out["profile"] = L.profile_layer(
        [
            {
                "technique_id": "T1059.001",
                "tactics": t("T1059.001"),
                "via": "direct",
                "procedure": "APT29 has used PowerShell.",
            },
            {
                "technique_id": "T1059.001",
                "tactics": t("T1059.001"),
                "via": "software",
                "source": "Cobalt Strike",
                "source_id": "S0154",
                "procedure": "Cobalt Strike can run PowerShell.",
            },
            {
                "technique_id": "T1055.011",
                "tactics": t("T1055.011"),
                "via": "software",
                "source": "Cobalt Strike",
                "source_id": "S0154",
                "procedure": "injects",
            },
            {
                "technique_id": "T1003",
                "tactics": t("T1003"),
                "via": "campaign",
                "source": "SolarWinds Compromise",
                "source_id": "C0024",
            },
        ],
        name="APT29",
        actor="APT29 (G0016)",
        **common,
    )
    out["heat"] = L.heat_layer(
        [
            {"technique_id": "T1059.001", "tactics": t("T1059.001"), "actors": ["APT28", "APT29"]},
            {"technique_id": "T1003.001", "tactics": t("T1003.001"), "actors": ["APT29"]},
            {"technique_id": "T1003.001", "tactics": t("T1003.001"), "actors": ["FIN7"]},
            {"technique_id": "T1566.001", "tactics": t("T1566.001"), "actors": ["APT28"]},
        ],
        name="heat",
        actors=["APT28", "APT29", "FIN7"],
        **common,
    )
    out["coverage"] = L.coverage_layer(
        [
            {"technique_id": "T1059.001", "tactics": t("T1059.001"), "rules": ["ps-enc", "ps-dl"]},
            {"technique_id": "T1003.001", "tactics": t("T1003.001"), "rules": ["lsass-access"]},
            {"technique_id": "T1055.011", "tactics": t("T1055.011"), "rules": []},
        ],
        name="coverage",
        **common,
    )
    out["gaps"] = L.gaps_layer(
        [
            {"technique_id": "T1055.011", "tactics": t("T1055.011"), "priority": 9, "reason": "a"},
            {"technique_id": "T1566.001", "tactics": t("T1566.001"), "priority": 4, "reason": "b"},
        ],
        name="gaps",
        **common,
    )
    out["telemetry"] = L.telemetry_layer(
        [
            {
                "technique_id": "T1059.001",
                "tactics": t("T1059.001"),
                "collected": ["Process Creation", "Script Execution"],
                "missing": ["Module Load"],
            },
            {"technique_id": "T1003", "tactics": t("T1003"), "missing": ["OS API Execution"]},
        ],
        name="telemetry",
        **common,
    )
    a = L.read_layer(out["heat"])
    b = L.read_layer(out["coverage"])
    out["combined"] = L.combine_layers({"a": a, "b": b}, "a - b", name="heat minus coverage")
    return out


@pytest.fixture(scope="module")
def builder_layers(attack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _builder_layers(attack)


BUILDERS = ["generic", "profile", "heat", "coverage", "gaps", "telemetry", "combined"]


@pytest.mark.parametrize("which", BUILDERS)
def test_builder_output_follows_layer_format_4_5(which: str, builder_layers, attack) -> None:
    layer = builder_layers[which]
    assert L.layer_problems(layer) == []
    L.validate_layer(layer)
    assert layer["versions"]["layer"] == "4.5"
    assert layer["versions"]["attack"] == "18.1"
    nav = tuple(int(x) for x in layer["versions"]["navigator"].split("."))
    assert nav >= (4, 9, 0)
    assert layer["domain"] == "enterprise-attack"
    g = layer["gradient"]
    assert isinstance(g["minValue"], int) and isinstance(g["maxValue"], int)
    assert g["maxValue"] > g["minValue"]
    scores = [e["score"] for e in layer["techniques"] if "score" in e]
    assert g["minValue"] <= min(scores) and max(scores) <= g["maxValue"]
    entries = {(e["techniqueID"], e.get("tactic")): e for e in layer["techniques"]}
    assert len(entries) == len(layer["techniques"])
    for (tid, tactic), _entry in entries.items():
        if tactic is not None:  # every tactic is one the technique really has
            assert tactic in attack["techniques"][tid]["tactics"], (tid, tactic)
        if "." in tid:  # the parent shows its sub-techniques in the same tactic
            parent = entries[(tid.split(".")[0], tactic)]
            assert parent["showSubtechniques"] is True


@needs_mitreattack
@pytest.mark.parametrize("which", BUILDERS)
def test_builder_output_loads_into_mitreattack_and_round_trips(which: str, builder_layers) -> None:
    from mitreattack.navlayers import Layer

    layer = builder_layers[which]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        loaded = Layer(layer)
    assert hasattr(loaded.layer, "get_dict"), printed.getvalue()
    assert printed.getvalue() == "", printed.getvalue()  # it prints its complaints
    again = loaded.to_dict()
    # Layer-level links are the one field mitreattack-python does not write back.
    assert again == {k: v for k, v in layer.items() if k != "links"}
    assert Layer(again).to_dict() == again
    parsed = L.read_layer(again)
    assert {t.key for t in parsed.techniques} == {
        (e["techniqueID"], e.get("tactic")) for e in layer["techniques"]
    }


def test_multi_tactic_technique_gets_one_entry_per_tactic(builder_layers, attack) -> None:
    tactics = _tactics(attack, "T1055.011")
    assert sorted(tactics) == ["defense-evasion", "privilege-escalation"]
    entries = [
        e for e in builder_layers["generic"]["techniques"] if e["techniqueID"] == "T1055.011"
    ]
    assert sorted(e["tactic"] for e in entries) == sorted(tactics)
    assert all(e["score"] == 2 and isinstance(e["score"], int) for e in entries)
    parents = [e for e in builder_layers["generic"]["techniques"] if e["techniqueID"] == "T1055"]
    assert sorted(p["tactic"] for p in parents) == sorted(tactics)
    assert all(p["showSubtechniques"] and "score" not in p for p in parents)


def test_generic_layer_fields(builder_layers, attack) -> None:
    layer = builder_layers["generic"]
    ps = next(e for e in layer["techniques"] if e["techniqueID"] == "T1059.001")
    assert ps == {
        "techniqueID": "T1059.001",
        "tactic": "execution",
        "score": 4,
        "comment": "ps",
        "enabled": True,
        "showSubtechniques": False,
    }
    inj = next(e for e in layer["techniques"] if e["techniqueID"] == "T1055.011")
    assert inj["metadata"] == [{"name": "k", "value": "v"}, {"name": "n", "value": "3"}]
    assert inj["links"] == [{"label": "doc", "url": "https://example.org/x"}]
    assert inj["color"] == "#fd8d3c"
    creds = [e for e in layer["techniques"] if e["techniqueID"] == "T1003"]
    assert creds and all(e["enabled"] is False for e in creds)
    assert layer["legendItems"] == [{"label": "orange", "color": "#fd8d3c"}]
    assert layer["metadata"] == [{"name": "source", "value": "test"}]
    assert layer["filters"]["platforms"] == _platforms(
        attack, ["T1059.001", "T1055.011", "T1003", "T1003.001", "T1566.001"]
    )
    assert layer["gradient"] == {"colors": list(L.DEFAULT_GRADIENT), "minValue": 0, "maxValue": 4}


def test_build_layer_dividers_and_optional_fields() -> None:
    layer = L.build_layer(
        [
            L.LayerTechnique(
                "T1110",
                ["credential-access"],
                metadata=[("a", "1"), L.DIVIDER, {"name": "b", "value": "2"}],
                links=[("x", "https://x.example"), L.DIVIDER],
            )
        ],
        name="d",
        attack_version=None,
        links=[("home", "https://example.org")],
    )
    L.validate_layer(layer)
    entry = layer["techniques"][0]
    assert entry["metadata"][1] == {"divider": True}
    assert entry["links"][1] == {"divider": True}
    assert "attack" not in layer["versions"]
    assert "filters" not in layer and "description" not in layer and "legendItems" not in layer
    assert layer["links"] == [{"label": "home", "url": "https://example.org"}]
    # no scores: a one-wide gradient from 0
    assert (layer["gradient"]["minValue"], layer["gradient"]["maxValue"]) == (0, 1)


def test_entry_without_tactics_applies_to_all_tactics() -> None:
    layer = L.build_layer(
        [{"technique_id": "T1078.004", "score": 1}], name="x", attack_version="18.1"
    )
    assert layer["techniques"] == [
        {"techniqueID": "T1078", "comment": "", "enabled": True, "showSubtechniques": True},
        {
            "techniqueID": "T1078.004",
            "score": 1,
            "comment": "",
            "enabled": True,
            "showSubtechniques": False,
        },
    ]


def test_parent_annotation_survives_the_added_per_tactic_entry() -> None:
    layer = L.build_layer(
        [
            {"technique_id": "T1059", "score": 2, "comment": "parent"},  # all tactics
            {"technique_id": "T1059.001", "tactics": ["execution"], "score": 1},
            {"technique_id": "T1110", "tactics": ["credential-access"], "score": 1},
            {"technique_id": "T1110.001", "score": 3},  # all tactics
        ],
        name="x",
        attack_version="18.1",
    )
    entries = {(e["techniqueID"], e.get("tactic")): e for e in layer["techniques"]}
    assert entries[("T1059", "execution")] == {
        "techniqueID": "T1059",
        "tactic": "execution",
        "score": 2,
        "comment": "parent",
        "enabled": True,
        "showSubtechniques": True,
    }
    assert entries[("T1059", None)]["showSubtechniques"] is False  # other tactics: folded
    assert entries[("T1110", "credential-access")]["showSubtechniques"] is True
    assert entries[("T1110", None)]["showSubtechniques"] is True
    assert "score" not in entries[("T1110", None)]
    order = [(e["techniqueID"], e.get("tactic")) for e in layer["techniques"]]
    assert order.index(("T1059", None)) < order.index(("T1059", "execution"))


@pytest.mark.parametrize(
    ("techniques", "kwargs", "message"),
    [
        ([{"technique_id": "X1059"}], {}, "techniques[0]: technique_id 'X1059'"),
        ([{"technique_id": "T1059.1"}], {}, "techniques[0]: technique_id 'T1059.1'"),
        ([{"technique_id": "T1059", "tactics": ["Execution"]}], {}, "techniques[0]: tactic"),
        ([{"technique_id": "T1059", "color": "red"}], {}, "techniques[0]: color 'red'"),
        ([{"technique_id": "T1059", "score": math.nan}], {}, "techniques[0]: score"),
        ([{"technique_id": "T1059", "score": "3"}], {}, "techniques[0]: score '3'"),
        (
            [{"technique_id": "T1059", "tactics": ["execution"]}] * 2,
            {},
            "techniques[1]: T1059 in execution is listed twice",
        ),
        ([{"technique_id": "T1059", "links": [("x", "www.x")]}], {}, "links[0]: url"),
        ([], {"domain": "pre-attack"}, "layer: domain 'pre-attack'"),
        ([], {"attack_version": "v18"}, "attack_version 'v18'"),
        ([], {"sorting": 7}, "sorting"),
        ([], {"layout": {"showIds": True}}, "layout: unknown option 'showIds'"),
        ([], {"gradient": {"colors": ["#fff"], "minValue": 0, "maxValue": 1}}, "gradient"),
    ],
)
def test_build_layer_rejects_bad_input(techniques, kwargs, message) -> None:
    kwargs = {"name": "x", "attack_version": "18.1", **kwargs}
    with pytest.raises(InvalidInput) as err:
        L.build_layer(techniques, **kwargs)
    assert message in err.value.detail


def test_profile_layer_tells_paths_apart(builder_layers) -> None:
    layer = builder_layers["profile"]
    by_id: dict[str, Any] = {}
    for e in layer["techniques"]:
        by_id.setdefault(e["techniqueID"], e)
    ps, inj, creds = by_id["T1059.001"], by_id["T1055.011"], by_id["T1003"]
    assert (ps["score"], ps["color"]) == (3, L.PATH_COLORS["direct"])  # direct beats software
    assert (inj["score"], inj["color"]) == (2, L.PATH_COLORS["software"])
    assert (creds["score"], creds["color"]) == (1, L.PATH_COLORS["campaign"])
    assert ps["comment"].splitlines() == [
        "Direct: APT29 has used PowerShell.",
        "Via software Cobalt Strike (S0154): Cobalt Strike can run PowerShell.",
    ]
    assert {
        "label": "ATT&CK: T1059.001",
        "url": "https://attack.mitre.org/techniques/T1059/001/",
    } in ps["links"]
    assert {
        "label": "Software: Cobalt Strike (S0154)",
        "url": "https://attack.mitre.org/software/S0154/",
    } in ps["links"]
    assert "https://attack.mitre.org/campaigns/C0024/" in [x["url"] for x in creds["links"]]
    assert layer["legendItems"] == [
        {"label": L.PATH_LABELS[p], "color": L.PATH_COLORS[p]}
        for p in ("direct", "software", "campaign")
    ]
    assert {"name": "actor", "value": "APT29 (G0016)"} in layer["metadata"]


def test_profile_layer_without_colors_uses_the_gradient() -> None:
    layer = L.profile_layer(
        [{"technique_id": "T1110", "tactics": ["credential-access"], "via": "software"}],
        name="p",
        attack_version="18.1",
        use_colors=False,
    )
    assert "color" not in layer["techniques"][0] and "legendItems" not in layer
    assert layer["techniques"][0]["score"] == 2
    with pytest.raises(InvalidInput, match=r"uses\[0\]: via 'tool'"):
        L.profile_layer([{"technique_id": "T1110", "via": "tool"}], name="p", attack_version=None)


def test_heat_layer_counts_actors_and_marks_common(builder_layers) -> None:
    layer = builder_layers["heat"]
    by_id = {e["techniqueID"]: e for e in layer["techniques"]}
    assert by_id["T1059.001"]["score"] == 2
    assert by_id["T1003.001"]["score"] == 2  # two entries merged
    assert [m["value"] for m in by_id["T1003.001"]["metadata"]] == ["APT29", "FIN7"]
    assert by_id["T1003.001"]["comment"] == "Used by 2 of 3 actors: APT29, FIN7"
    assert "color" not in by_id["T1059.001"]  # not common to all three
    common = L.heat_layer(
        [
            {"technique_id": "T1110", "tactics": ["credential-access"], "actors": ["A", "B"]},
            {"technique_id": "T1078", "tactics": ["persistence"], "actors": ["A"]},
        ],
        name="h",
        attack_version="18.1",
        weights={"A": 2.5, "B": 0.5},
    )
    scores = {e["techniqueID"]: e for e in common["techniques"]}
    assert scores["T1110"]["score"] == 3 and scores["T1110"]["color"] == L.COMMON_COLOR
    assert scores["T1078"]["score"] == 2.5 and "color" not in scores["T1078"]
    assert common["legendItems"] == [{"label": "used by all 2 actors", "color": L.COMMON_COLOR}]
    assert (common["gradient"]["minValue"], common["gradient"]["maxValue"]) == (0, 3)


def test_coverage_gaps_telemetry_scores(builder_layers) -> None:
    cov = {e["techniqueID"]: e for e in builder_layers["coverage"]["techniques"]}
    assert cov["T1059.001"]["score"] == 2
    assert cov["T1059.001"]["comment"] == "2 rules:\nps-enc\nps-dl"
    assert cov["T1055.011"]["score"] == 0 and cov["T1055.011"]["comment"] == "No rules"
    gaps = {e["techniqueID"]: e for e in builder_layers["gaps"]["techniques"]}
    assert gaps["T1055.011"]["score"] == 9 and gaps["T1055.011"]["comment"] == "a"
    assert builder_layers["gaps"]["sorting"] == 3
    tel = {e["techniqueID"]: e for e in builder_layers["telemetry"]["techniques"]}
    assert tel["T1059.001"]["score"] == 2
    assert tel["T1059.001"]["comment"] == (
        "Collected: Process Creation, Script Execution\nNot collected: Module Load"
    )
    assert tel["T1003"]["score"] == 0
    with pytest.raises(InvalidInput, match=r"entries\[0\]: priority missing"):
        L.gaps_layer([{"technique_id": "T1110"}], name="g", attack_version="18.1")


def test_gradient_for_scores() -> None:
    g = L.gradient_for_scores([0.5, 2.25, None])
    assert (g.min_value, g.max_value) == (0, 3)
    g = L.gradient_for_scores([-1.5, 4])
    assert (g.min_value, g.max_value) == (-2, 4)
    g = L.gradient_for_scores([0, 0])
    assert (g.min_value, g.max_value) == (0, 1)
    assert L.technique_url("T1059") == "https://attack.mitre.org/techniques/T1059/"


# --------------------------------------------------------------------------------------------
# validate_layer and read_layer
# --------------------------------------------------------------------------------------------


def _minimal(**extra: Any) -> dict[str, Any]:
    layer = {
        "name": "m",
        "domain": "enterprise-attack",
        "versions": {"attack": "18.1", "navigator": "5.1.0", "layer": "4.5"},
        "techniques": [{"techniqueID": "T1059.001", "tactic": "execution", "score": 1}],
    }
    layer.update(extra)
    return layer


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (_minimal(versions={"attack": "18.1", "navigator": "5.1.0", "layer": "4.3"}), "4.3"),
        (_minimal(versions={"navigator": "4.8.0", "layer": "4.5"}), "older than 4.9.0"),
        ({k: v for k, v in _minimal().items() if k != "versions"}, "versions missing"),
        (_minimal(viewMode=1), "layer viewMode: unknown key"),
        (_minimal(techniques=[{"techniqueID": "T1001", "techniqueId": "x"}]), "techniqueId"),
        (_minimal(techniques=[{"techniqueID": "T1001", "color": "red"}]), "'red'"),
        (_minimal(techniques=[{"techniqueID": "T1001"}, {"techniqueID": "T1001"}]), "repeats"),
        (_minimal(gradient={"colors": ["#fff", "#000"], "minValue": 5, "maxValue": 5}), "greater"),
        (_minimal(filters={"platforms": []}), "filters.platforms: is empty"),
        (_minimal(links=[{"label": "x", "url": "example.org"}]), "protocol"),
    ],
)
def test_validate_layer_is_stricter_than_read_layer(layer, message) -> None:
    with pytest.raises(InvalidInput) as err:
        L.validate_layer(layer)
    assert message in err.value.detail
    parsed = L.read_layer(layer)  # a person's layer like this is still readable
    assert any(message in w for w in parsed.warnings), parsed.warnings


def _art_files() -> list[Path]:
    files = sorted(ART_DIR.glob("*.json"))
    return files


def test_atomic_red_team_layers_are_there() -> None:
    assert len(_art_files()) >= 10, f"Atomic Red Team layers missing in {ART_DIR}"


@pytest.mark.parametrize("path", _art_files(), ids=lambda p: p.name)
def test_read_atomic_red_team_layer(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = L.read_layer(path)
    assert parsed.name == raw["name"]
    assert parsed.domain == raw["domain"]
    assert parsed.layer_version == raw["versions"]["layer"]
    assert parsed.attack_version == raw["versions"]["attack"]
    assert parsed.platforms == (raw.get("filters") or {}).get("platforms")
    assert parsed.technique_ids == {t["techniqueID"] for t in raw["techniques"]}
    expected = {
        (t["techniqueID"], t.get("tactic")): (
            t.get("score"),
            t.get("color") or None,
            t.get("comment", ""),
            t.get("enabled", True),
        )
        for t in raw["techniques"]
    }
    got = {t.key: (t.score, t.color, t.comment, t.enabled) for t in parsed.techniques}
    assert got == expected
    assert [(i.label, i.color) for i in parsed.legend] == [
        (i["label"], i["color"]) for i in raw.get("legendItems", [])
    ]
    # the other ways in give the same result
    for other in (str(path), path.read_text(encoding="utf-8"), path.read_bytes(), raw):
        assert L.read_layer(other).techniques == parsed.techniques


@pytest.mark.parametrize("version", ["4.0", "4.1", "4.2", "4.3", "4.4", "4.5"])
def test_read_any_4x_layer(version: str) -> None:
    layer = _minimal(versions={"attack": "13", "navigator": "4.8.2", "layer": version})
    parsed = L.read_layer(layer)
    assert parsed.layer_version == version
    assert parsed.score_of("T1059.001", "execution") == 1
    assert (version != "4.5") == any("versions.layer" in w for w in parsed.warnings)


def test_read_utf16_file_and_layer_lists(tmp_path: Path) -> None:
    path = tmp_path / "layer.json"
    path.write_text(json.dumps(_minimal()), encoding="utf-16")  # as mitreattack writes them
    assert L.read_layer(path).technique_ids == {"T1059.001"}
    both = tmp_path / "both.json"
    both.write_text(json.dumps([_minimal(), _minimal(name="n")]), encoding="utf-8")
    assert [p.name for p in L.read_layers(both)] == ["m", "n"]
    with pytest.raises(InvalidInput, match="holds 2 layers"):
        L.read_layer(both)


def test_read_layer_entry_lookup_and_last_entry_wins() -> None:
    parsed = L.read_layer(
        _minimal(
            techniques=[
                {"techniqueID": "T1055", "score": 1},
                {"techniqueID": "T1055", "tactic": "defense-evasion", "score": 5},
                {"techniqueID": "T1055", "tactic": "defense-evasion", "score": 7},
            ]
        )
    )
    assert parsed.score_of("T1055", "defense-evasion") == 7
    assert parsed.score_of("T1055", "privilege-escalation") == 1  # the all-tactics entry
    assert parsed.score_of("T1055") == 1
    assert parsed.score_of("T1056") is None
    assert any("repeats techniques[1]" in w for w in parsed.warnings)


def _bad(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """_minimal() with one field changed, given as "key" or "techniques.N.key"."""
    layer = json.loads(json.dumps(base or _minimal()))
    parts = path.split(".")
    target = layer
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return layer


_DELETE = object()
_FOUR = _minimal(
    techniques=[
        {"techniqueID": "T1001"},
        {"techniqueID": "T1002"},
        {"techniqueID": "T1003"},
        {"techniqueID": "T1004", "score": 1},
    ]
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "layer: the list holds no layers"),
        ("[1, 2]", "layer [0]: expected a layer object, not a number"),
        ('{"a": 1}', "layer: not a Navigator layer"),
        ("not json {", "layer: not JSON"),
        ("{", "layer: not JSON"),
        (
            _bad("versions", {"layer": "3.0", "navigator": "3.0"}),
            "layer versions.layer: layer format '3.0'",
        ),
        (
            _bad("versions", {"layer": "5.0", "navigator": "6.0.0"}),
            "layer versions.layer: layer format '5.0'",
        ),
        (
            {"name": "v3", "version": "3.0", "domain": "mitre-enterprise"},
            "layer version: layer format '3.0'",
        ),
        (_bad("versions", "4.5"), "layer versions: must be an object"),
        (_bad("versions.layer", 4.5), "layer versions.layer: must be a string"),
        (
            _bad("techniques.3.techniqueID", _DELETE, _FOUR),
            "layer techniques[3]: techniqueID missing",
        ),
        (_bad("techniques.0.techniqueID", "X1059"), "layer techniques[0]: techniqueID 'X1059'"),
        (
            _bad("techniques.0.techniqueID", 1059),
            "layer techniques[0]: techniqueID must be a string",
        ),
        (_bad("techniques.0.score", "high"), "layer techniques[0]: score must be a number"),
        (_bad("techniques.0.score", True), "layer techniques[0]: score must be a number"),
        (_bad("techniques.0.enabled", "yes"), "layer techniques[0]: enabled must be true or false"),
        (_bad("techniques.0.tactic", 5), "layer techniques[0]: tactic must be a string"),
        (_bad("techniques.0.tactic", "Execution"), "layer techniques[0]: tactic 'Execution'"),
        (_bad("techniques.0.comment", ["x"]), "layer techniques[0]: comment must be a string"),
        (_bad("techniques.0.showSubtechniques", 1), "layer techniques[0]: showSubtechniques"),
        (
            _bad("techniques.0.metadata", [{"name": "a"}]),
            "layer techniques[0].metadata[0]: value missing",
        ),
        (_bad("techniques.0.metadata", {"a": 1}), "layer techniques[0].metadata: must be a list"),
        (_bad("techniques.0.links", [{"label": "a"}]), "layer techniques[0].links[0]: url missing"),
        (_bad("techniques.0", "T1059"), "layer techniques[0]: must be an object, not a string"),
        (_bad("techniques", {"T1059": 1}), "layer techniques: must be a list"),
        (_bad("name", _DELETE), "layer: name missing"),
        (_bad("name", 5), "layer name: must be a string"),
        (_bad("domain", _DELETE), "layer: domain missing"),
        (_bad("domain", "pre-attack"), "layer domain: 'pre-attack' is not one of"),
        (
            _bad("gradient", {"colors": ["#fff", "#000"], "minValue": "0", "maxValue": 1}),
            "layer gradient.minValue",
        ),
        (
            _bad("gradient", {"colors": "#fff", "minValue": 0, "maxValue": 1}),
            "layer gradient.colors",
        ),
        (_bad("legendItems", [{"label": "x"}]), "layer legendItems[0]: color missing"),
        (_bad("filters", {"platforms": "Windows"}), "layer filters.platforms: must be a list"),
        (_bad("sorting", "3"), "layer sorting: must be 0, 1, 2 or 3"),
        (_bad("layout", {"layout": "wide"}), "layer layout.layout: must be one of"),
        (_bad("hideDisabled", "no"), "layer hideDisabled: must be true or false"),
        (_bad("metadata", [{"value": "x"}]), "layer metadata[0]: name missing"),
    ],
)
def test_bad_layers_name_the_place(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        L.read_layer(data)
    detail = err.value.detail
    assert detail.startswith(message), detail
    assert "\n" not in detail
    if isinstance(data, dict):  # and validate_layer says the same
        with pytest.raises(InvalidInput) as err2:
            L.validate_layer(data)
        assert message in err2.value.detail


def test_bad_layer_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_bad("techniques.0.score", "x")), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"^layer mine.json techniques\[0\]: score"):
        L.read_layer(path)
    with pytest.raises(InvalidInput, match=r"^layer nope.json: cannot be read"):
        L.read_layer(tmp_path / "nope.json")


# --------------------------------------------------------------------------------------------
# combine_layers
# --------------------------------------------------------------------------------------------


Entries = list[tuple[str, str | None, float | None]]


def _layer(name: str, entries: Entries) -> L.ParsedLayer:
    techniques = []
    for tid, tactic, score in entries:
        t: dict[str, Any] = {"techniqueID": tid}
        if tactic:
            t["tactic"] = tactic
        if score is not None:
            t["score"] = score
        techniques.append(t)
    return L.read_layer(_minimal(name=name, techniques=techniques))


A_ENTRIES: Entries = [
    ("T1059.001", "execution", 3),
    ("T1003", "credential-access", 5),
    ("T1110", None, 2),
    ("T1566", "initial-access", None),  # listed, unscored
    ("T1078", "persistence", 4),
]
B_ENTRIES: Entries = [
    ("T1059.001", "execution", 1),
    ("T1003", "credential-access", 5),
    ("T1110", "credential-access", 6),  # tactic-specific: a's T1110 applies to all tactics
    ("T1566", "initial-access", None),
    ("T1486", "impact", 2),
]
C_ENTRIES: Entries = [("T1486", "impact", 10), ("T1078", "persistence", 1)]


def _expected(expr, keep_zero: bool = True) -> dict[tuple[str, str | None], float]:
    """The rules, computed independently: a missing or unscored technique counts 0, a result
    only where some layer scores it, a per-tactic entry else the all-tactics one."""
    layers = {"a": A_ENTRIES, "b": B_ENTRIES, "c": C_ENTRIES}
    keys: list[tuple[str, str | None]] = []
    for entries in layers.values():
        for tid, tactic, _ in entries:
            if (tid, tactic) not in keys:
                keys.append((tid, tactic))
    out: dict[tuple[str, str | None], float] = {}
    for tid, tactic in keys:
        scope: dict[str, float] = {}
        misses = 0
        for var, entries in layers.items():
            found = {(t, ta): s for t, ta, s in entries}
            value = found.get((tid, tactic))
            if value is None and tactic is not None:
                value = found.get((tid, None))
            if value is None:
                misses += 1
            scope[var] = value or 0
        if misses == len(layers):
            continue
        try:
            result = expr(**scope)
        except ZeroDivisionError:
            continue
        if result == 0 and not keep_zero:
            continue
        out[(tid, tactic)] = result
    return out


@pytest.mark.parametrize(
    ("expression", "expr"),
    [
        ("a + b", lambda a, b, c: a + b),
        ("a - b", lambda a, b, c: a - b),
        ("A+B+C", lambda a, b, c: a + b + c),
        ("min(a, b, c)", lambda a, b, c: min(a, b, c)),
        ("max(a, b) - c", lambda a, b, c: max(a, b) - c),
        ("(a + b) / 2", lambda a, b, c: (a + b) / 2),
        ("a * 2 + -b", lambda a, b, c: a * 2 + -b),
        ("c / a", lambda a, b, c: c / a),
        ("1.5", lambda a, b, c: 1.5),
    ],
)
def test_combine_layers_scores(expression: str, expr) -> None:
    layers = {"a": _layer("A", A_ENTRIES), "b": _layer("B", B_ENTRIES), "c": _layer("C", C_ENTRIES)}
    result = L.combine_layers(layers, expression, name="combined")
    L.validate_layer(result)
    got = {(t["techniqueID"], t.get("tactic")): t.get("score") for t in result["techniques"]}
    expected = _expected(expr)
    assert {k: v for k, v in got.items() if v is not None} == pytest.approx(expected)
    # entries without a score are only the parents added to show sub-techniques
    assert {k for k, v in got.items() if v is None} <= {("T1059", "execution")}
    assert result["name"] == "combined"
    assert result["versions"]["attack"] == "18.1"
    assert {"name": "expression", "value": expression} in result["metadata"]


def test_combine_layers_drops_zero_when_asked() -> None:
    layers = {"a": _layer("A", A_ENTRIES), "b": _layer("B", B_ENTRIES), "c": _layer("C", C_ENTRIES)}
    result = L.combine_layers(layers, "a - b", keep_zero=False)
    got = {(t["techniqueID"], t.get("tactic")): t.get("score") for t in result["techniques"]}
    assert ("T1003", "credential-access") not in got  # 5 - 5
    assert {k: v for k, v in got.items() if v is not None} == _expected(
        lambda a, b, c: a - b, keep_zero=False
    )
    kept = L.combine_layers(layers, "a - b")
    assert {"techniqueID": "T1003", "tactic": "credential-access", "score": 0}.items() <= next(
        t for t in kept["techniques"] if t["techniqueID"] == "T1003"
    ).items()


def test_combine_layers_copies_fields_like_the_navigator() -> None:
    a = L.read_layer(
        _minimal(
            techniques=[
                {
                    "techniqueID": "T1110",
                    "tactic": "credential-access",
                    "score": 1,
                    "comment": "hi",
                },
                {"techniqueID": "T1078", "tactic": "persistence", "color": "#31a354"},
            ],
            legendItems=[{"label": "green", "color": "#31a354"}],
            filters={"platforms": ["Linux"]},
        )
    )
    b = _layer("B", [("T1110", "credential-access", 2)])
    result = L.combine_layers(
        {"a": a, "b": b},
        "a * b",
        comments_from="a",
        colors_from="a",
        legend_from="a",
        filters_from="a",
        gradient_from="a",
    )
    by_id = {t["techniqueID"]: t for t in result["techniques"]}
    assert by_id["T1110"]["score"] == 2 and by_id["T1110"]["comment"] == "hi"
    assert by_id["T1078"]["color"] == "#31a354" and "score" not in by_id["T1078"]
    assert result["legendItems"] == [{"label": "green", "color": "#31a354"}]
    assert result["filters"] == {"platforms": ["Linux"]}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "function '__import__' is not allowed"),
        ("__import__('os').system('true')", "is not allowed"),
        ("a.__class__", "attribute access is not allowed"),
        ("a.real", "attribute access is not allowed"),
        ("().__class__.__bases__", "attribute access is not allowed"),
        ("d + 1", "unknown variable 'd'"),
        ("x", "unknown variable 'x'"),
        ("open('/etc/passwd')", "function 'open' is not allowed"),
        ("globals()", "function 'globals' is not allowed"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("a ** 2", "operator not allowed"),
        ("a % 2", "operator not allowed"),
        ("a // 2", "operator not allowed"),
        ("'x' * 3", "not allowed"),
        ("[a]", "not allowed"),
        ("a < b", "not allowed"),
        ("a and b", "not allowed"),
        ("a if b else c", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("True + a", "unknown variable 'true'"),  # lower-cased, as in the Navigator
        ("1j", "not allowed"),
        ("min", "min must be called"),
        ("max()", "max() takes one or more values"),
        ("min(*a)", "not allowed"),
        ("min(a, key=b)", "one or more values"),
        ("a +", "expression: invalid syntax"),
        ("a; b", "expression:"),
        ("", "expression: empty"),
        ("a + " * 200 + "a", "longer than"),
        ("min(" * 60 + "a" + ")" * 60, "too deeply nested"),
        ("-" * 80 + "a", "too deeply nested"),
        ("(" * 120 + "a" + ")" * 120 + "+ x", "unknown variable 'x'"),
    ],
)
def test_combine_layers_rejects_unsafe_or_bad_expressions(expression: str, message: str) -> None:
    layers = {"a": _layer("A", A_ENTRIES), "b": _layer("B", B_ENTRIES), "c": _layer("C", C_ENTRIES)}
    with pytest.raises(InvalidInput) as err:
        L.combine_layers(layers, expression)
    assert message in err.value.detail
    assert err.value.detail.startswith("expression")


def test_combine_layers_rejects_bad_bindings() -> None:
    a = _layer("A", A_ENTRIES)
    ics = L.read_layer(_minimal(domain="ics-attack", techniques=[{"techniqueID": "T0800"}]))
    with pytest.raises(InvalidInput, match="different domains"):
        L.combine_layers({"a": a, "b": ics}, "a + b")
    with pytest.raises(InvalidInput, match="comments_from names 'z'"):
        L.combine_layers({"a": a}, "a", comments_from="z")
    with pytest.raises(InvalidInput, match="variable 'A1'"):
        L.combine_layers({"A1": a}, "a")
    with pytest.raises(InvalidInput, match="'min' cannot name a layer"):
        L.combine_layers({"min": a}, "min")
    with pytest.raises(InvalidInput, match="no layers"):
        L.combine_layers({}, "1")
    # raw dicts are read first, and their errors surface
    with pytest.raises(InvalidInput, match=r"techniques\[0\]: techniqueID missing"):
        L.combine_layers({"a": _minimal(techniques=[{}])}, "a")


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

RENDER_IDS = ["T1055.011", "T1059.001", "T1003"]


@pytest.fixture(scope="module")
def small_layer(attack: dict[str, Any]) -> dict[str, Any]:
    """Real ids: a sub-technique in two tactics, a sub-technique in one, a technique."""
    assert len(_tactics(attack, "T1055.011")) >= 2
    return L.build_layer(
        [
            L.LayerTechnique("T1055.011", _tactics(attack, "T1055.011"), score=3, comment="inj"),
            L.LayerTechnique("T1059.001", _tactics(attack, "T1059.001"), score=1, color="#3182bd"),
            L.LayerTechnique("T1003", _tactics(attack, "T1003"), score=2),
        ],
        name="render test: a layer / with a long name",
        attack_version="18.1",
        layout={"showID": True},
        gradient=L.Gradient(("#ffffff", "#ff0000"), 0, 3),
        metadata=[("a", "b"), L.DIVIDER],
    )


def _svg_cells(path: Path) -> dict[str, list[tuple[str, str]]]:
    """technique id -> [(fill style, displayed text)] for each cell drawn for it."""
    tree = ET.parse(path)
    ns = "{http://www.w3.org/2000/svg}"
    cells: dict[str, list[tuple[str, str]]] = {}
    for group in tree.iter(f"{ns}g"):
        children = list(group)
        for i, child in enumerate(children):
            cls = child.get("class", "")
            if child.tag != f"{ns}rect" or not re.fullmatch(r"T\d{4}(\.\d{3})?", cls):
                continue
            text = children[i + 1] if i + 1 < len(children) else None
            assert text is not None and text.tag == f"{ns}text", cls
            pieces = [t.text or "" for t in text.iter(f"{ns}tspan")] or [text.text or ""]
            cells.setdefault(cls, []).append((child.get("style", ""), " ".join(pieces)))
    return cells


def _rgb(hex_color: str) -> str:
    h = hex_color.lstrip("#")
    return f"rgb({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)})"


@needs_mitreattack
def test_render_svg(small_layer, attack, tmp_path: Path) -> None:
    out = tmp_path / "layer.svg"
    report = L.render_svg(small_layer, ENTERPRISE, out)
    assert report.path == out and out.stat().st_size > 10_000
    assert report.seconds > 0
    assert report.messages == []  # no complaints from mitreattack-python
    cells = _svg_cells(out)
    for tid in RENDER_IDS:
        name = attack["techniques"][tid]["name"]
        drawn = cells.get(tid, [])
        assert len(drawn) == len(_tactics(attack, tid)), (tid, drawn)
        for style, text in drawn:
            assert text == f"{tid}: {name}"
            assert style != "fill: rgb(255, 255, 255)", (tid, style)  # scored or coloured
    assert all(style == "fill: " + _rgb("#3182bd") for style, _ in cells["T1059.001"])
    assert all(style == "fill: rgb(255, 0, 0)" for style, _ in cells["T1055.011"])  # score 3 = max
    assert "T1055.012" in cells  # a sibling drawn too: the parent is expanded
    assert cells["T1134"][0][0] == "fill: rgb(255, 255, 255)"  # an unannotated technique


def _xlsx_cells(path: Path) -> tuple[Any, dict[str, list[Any]]]:
    import openpyxl

    sheet = openpyxl.load_workbook(path).active
    header = {c.column: c.value for c in sheet[1] if c.value}
    found: dict[str, list[Any]] = {}
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and ": " in cell.value:
                tid = cell.value.split(": ", 1)[0]
                column = cell.column
                while column not in header:  # sub-technique columns have no header
                    column -= 1
                found.setdefault(tid, []).append((cell, header[column]))
    return sheet, found


@needs_mitreattack
def test_render_xlsx(small_layer, attack, tmp_path: Path) -> None:
    out = tmp_path / "layer.xlsx"
    report = L.render_xlsx(small_layer, ENTERPRISE, out)
    assert report.path == out and out.is_file()
    assert [m for m in report.messages if "looks IDs up by name" not in m] == []
    sheet, found = _xlsx_cells(out)
    assert sheet.title == "render test- a layer - with a l"  # Excel's 31 characters, no / or :
    tactic_titles = {short: f"{t['id']}: {t['name']}" for short, t in attack["tactics"].items()}
    for tid in RENDER_IDS:
        name = attack["techniques"][tid]["name"]
        cells = found.get(tid, [])
        assert sorted(title for _, title in cells) == sorted(
            tactic_titles[t] for t in _tactics(attack, tid)
        ), tid
        for cell, _ in cells:
            assert cell.value == f"{tid}: {name}"
            assert cell.fill.fill_type == "solid", tid
    assert all(c.fill.fgColor.rgb.endswith("3182BD") for c, _ in found["T1059.001"])
    assert all(c.fill.fgColor.rgb.endswith("FF0000") for c, _ in found["T1055.011"])
    assert all(c.comment and c.comment.text == "inj" for c, _ in found["T1055.011"])
    assert "T1055.012" in found  # the parent is expanded
    assert found["T1134"][0][0].fill.fill_type is None


@needs_mitreattack
def test_render_atomic_red_team_layer_with_annotated_subtechniques(attack, tmp_path: Path) -> None:
    path = ART_DIR / "art-navigator-layer-linux.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["filters"]["platforms"] == ["Linux"]
    plain = L.render_xlsx(raw, ENTERPRISE, tmp_path / "plain.xlsx")
    # sub-techniques stay folded, as in the Navigator, and the exporter says so
    assert any("T1003.008/(none)" in m and "hiding it" in m for m in plain.messages)
    _, folded = _xlsx_cells(tmp_path / "plain.xlsx")
    assert "T1003.008" not in folded

    raw["layout"] = {"expandedSubtechniques": "annotated", "showID": True}
    report = L.render_xlsx(raw, ENTERPRISE, tmp_path / "art.xlsx")
    assert not any("T1003.008" in m for m in report.messages)
    _, found = _xlsx_cells(tmp_path / "art.xlsx")
    svg = _svg_cells(L.render_svg(raw, ENTERPRISE, tmp_path / "art.svg").path)

    def on_linux(tid: str) -> bool:
        return "Linux" in attack["techniques"].get(tid, {}).get("platforms", [])

    # the annotated sub-techniques that the Linux matrix holds are all drawn
    subs = {
        t["techniqueID"]
        for t in raw["techniques"]
        if "." in t["techniqueID"]
        and on_linux(t["techniqueID"])
        and on_linux(t["techniqueID"].split(".")[0])
    }
    assert len(subs) > 20
    assert subs <= set(svg)
    # The Excel exporter labels cells with the ID of the first technique of that name, so
    # namesakes ("Local Account": T1136.001 in Persistence, T1087.001 in Discovery) are
    # found by name there, and the report says so.
    namesakes = {
        tid
        for tid in subs
        if sum(
            t["name"] == attack["techniques"][tid]["name"] for t in attack["techniques"].values()
        )
        > 1
    }
    assert {"T1087.001", "T1087.002"} <= namesakes
    assert subs - namesakes <= set(found)
    labels = {c.value for cells in found.values() for c, _ in cells}
    for tid in namesakes:
        assert any(v.endswith(": " + attack["techniques"][tid]["name"]) for v in labels), tid
    assert any("looks IDs up by name" in m for m in report.messages)


@needs_mitreattack
def test_render_copes_with_what_mitreattack_cannot_load(tmp_path: Path) -> None:
    layer = _minimal(
        sorting=1,  # crashes both exporters
        gradient={"colors": ["#ffffff", "#ff0000"], "minValue": 0.5, "maxValue": 2.5},  # floats
        metadata=[{"name": "a", "value": "b"}, {"divider": True}],
        links=[{"label": "x", "url": "https://example.org"}],
        filters={"platforms": []},
    )
    layer["techniques"] = [
        {"techniqueID": "T1110", "tactic": "credential-access", "score": 1.5},
        {"techniqueID": "T1078", "score": None, "metadata": [{"divider": True}]},
    ]
    layer.pop("versions")
    svg = L.render_svg(layer, ENTERPRISE, tmp_path / "x.svg")
    assert svg.messages == ["sorting 1 (descending by name) is not supported; drawn ascending"]
    xlsx = L.render_xlsx(layer, ENTERPRISE, tmp_path / "x.xlsx")
    assert xlsx.messages == svg.messages
    assert layer["sorting"] == 1  # the caller's layer is left as it was


@needs_mitreattack
def test_render_colours_like_the_navigator(tmp_path: Path) -> None:
    """Scores mix the gradient colours in RGB (mitreattack-python's own gradient goes through
    HSL: white to #ce232e passes through blue and green); #rgb and #rrggbbaa colours work."""
    layer = _minimal(
        gradient={"colors": ["#ffffff", "#ce232e"], "minValue": 0, "maxValue": 10},
        techniques=[
            {"techniqueID": "T1110", "score": 5},
            {"techniqueID": "T1078", "color": "#f00"},  # in four tactics: all get it
            {"techniqueID": "T1486", "color": "#3182bd80"},
        ],
    )
    half = tuple(round(a + (b - a) * 0.5) for a, b in zip((255,) * 3, (206, 35, 46), strict=True))
    alpha = 0x80 / 255
    over_white = tuple(round(alpha * v + (1 - alpha) * 255) for v in (0x31, 0x82, 0xBD))
    expected = {
        "T1110": half,
        "T1078": (255, 0, 0),
        "T1486": over_white,
    }
    svg = _svg_cells(L.render_svg(layer, ENTERPRISE, tmp_path / "c.svg").path)
    xlsx = L.render_xlsx(layer, ENTERPRISE, tmp_path / "c.xlsx")
    _, found = _xlsx_by_id(xlsx.path)
    for tid, rgb in expected.items():
        assert len(svg[tid]) == len(found[tid]) >= 1
        assert {style for style, _ in svg[tid]} == {"fill: rgb({}, {}, {})".format(*rgb)}, tid
        hex6 = "{:02x}{:02x}{:02x}".format(*rgb)
        assert {c.fill.fgColor.rgb[-6:].lower() for c in found[tid]} == {hex6}, tid
    assert len(found["T1078"]) == 4


def _xlsx_by_id(path: Path) -> tuple[Any, dict[str, Any]]:
    """Cells of a layer drawn without showID, by technique id (names from the bundle)."""
    import openpyxl

    names = {v["name"]: k for k, v in _bundle_facts(ENTERPRISE)["techniques"].items()}
    sheet = openpyxl.load_workbook(path).active
    found: dict[str, list[Any]] = {}
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if cell.value:
                found.setdefault(names[cell.value], []).append(cell)
    return sheet, found


@needs_mitreattack
def test_render_notes_namesakes_in_excel(tmp_path: Path) -> None:
    layer = L.build_layer(
        [{"technique_id": "T1583.001", "tactics": ["resource-development"], "score": 1}],
        name="n",
        attack_version="18.1",
    )
    report = L.render_xlsx(layer, ENTERPRISE, tmp_path / "n.xlsx")
    assert report.messages and "T1583.001 shares its name with T1584.001" in report.messages[0]


@needs_mitreattack
@pytest.mark.parametrize(
    ("domain", "bundle", "tid"),
    [
        ("ics-attack", "ics-attack-18.1.json", "T0800"),
        ("ics-attack", "stix21/ics-attack-18.1.json", "T0800"),
        ("mobile-attack", "mobile-attack-18.1.json", "T1404"),
    ],
)
def test_render_other_domains(domain: str, bundle: str, tid: str, tmp_path: Path) -> None:
    facts = _bundle_facts(ATTACK_DIR / bundle)
    layer = L.build_layer(
        [{"technique_id": tid, "tactics": facts["techniques"][tid]["tactics"], "score": 1}],
        name=domain,
        attack_version="18.1",
        domain=domain,
    )
    L.render_svg(layer, ATTACK_DIR / bundle, tmp_path / "d.svg")
    L.render_xlsx(layer, ATTACK_DIR / bundle, tmp_path / "d.xlsx")
    assert tid in _svg_cells(tmp_path / "d.svg")
    import openpyxl

    sheet = openpyxl.load_workbook(tmp_path / "d.xlsx").active
    name = facts["techniques"][tid]["name"]
    assert [c.value for row in sheet.iter_rows() for c in row if c.value == name] == [name] * len(
        facts["techniques"][tid]["tactics"]
    )


@needs_mitreattack
def test_render_rejects_other_domain_bundle_and_bad_layer(small_layer, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not match the bundle's"):
        L.render_svg(small_layer, ATTACK_DIR / "ics-attack-18.1.json", tmp_path / "x.svg")
    with pytest.raises(InvalidInput, match="not found"):
        L.render_xlsx(small_layer, tmp_path / "missing.json", tmp_path / "x.xlsx")
    with pytest.raises(InvalidInput, match=r"techniques\[0\]: techniqueID missing"):
        L.render_svg(_minimal(techniques=[{}]), ENTERPRISE, tmp_path / "x.svg")
    with pytest.raises(InvalidInput, match="svg_options: .*colour"):
        L.render_svg(small_layer, ENTERPRISE, tmp_path / "x.svg", svg_options={"colour": 1})


def test_rendering_without_mitreattack_says_so(monkeypatch, small_layer, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "mitreattack.navlayers", None)  # import now fails
    with pytest.raises(L.RenderingUnavailable, match=re.escape("pip install -e '.[render]'")):
        L.render_svg(small_layer, ENTERPRISE, tmp_path / "x.svg")
    with pytest.raises(L.RenderingUnavailable):
        L.render_xlsx(small_layer, ENTERPRISE, tmp_path / "x.xlsx")
