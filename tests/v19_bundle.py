"""A v19-shaped Enterprise bundle, built from the real 18.1 bundle for tests.

ATT&CK v19 split Defense Evasion into Stealth (TA0005, renamed) and Defense Impairment (TA0112,
new), moved the Defense Evasion techniques into one or both, and revoked T1562.x and
T1070.001/.002 into new ids (T1685, T1686, T1689, ...). MITRE's v19 bundle is not reachable
here, so this builds one with that shape from 18.1:

- the tactic TA0005 keeps its STIX id and becomes Stealth (``stealth``); a new tactic TA0112
  Defense Impairment (``defense-impairment``) follows it in the matrix;
- the revocations are Elastic's ATT&CK v18 -> v19 crosswalk (``attack_v18_to_v19.yaml`` in the
  Elastic corpus): each source technique is revoked by its target, created when 18.1 lacks it,
  and the relationships that used the source now use the target; T1562 (Impair Defenses) is
  revoked by two techniques (T1685 and T1686): a split, which only a crosswalk decides;
- the other current Impair Defenses sub-techniques are revoked into T1685 too;
- every current Defense Evasion technique moves to Defense Impairment when its name starts with
  Disable, Downgrade or Impair, to both tactics when it is Indicator Removal (T1070), and to
  Stealth otherwise;
- retired techniques keep their ``defense-evasion`` phase (a tactic the release no longer has),
  as MITRE's retired objects do.

Every fact a test needs comes back in :class:`V19` so that tests compare against what was built,
not against figures written down.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .bundle_facts import ext_id, is_current
from .conftest import CORPORA, ENTERPRISE

CROSSWALK_V19 = (
    CORPORA
    / "elastic"
    / "detection_rules"
    / "etc"
    / "attack-version-maps"
    / "attack_v18_to_v19.yaml"
)
OLD_SHORT = "defense-evasion"
STEALTH = ("TA0005", "Stealth", "stealth")
IMPAIRMENT = ("TA0112", "Defense Impairment", "defense-impairment")
SPLIT = ("T1562", ("T1685", "T1686"))  # one old id, two new ones
MODIFIED = "2026-04-28T00:00:00.000Z"


@dataclass
class V19:
    path: Path
    revoked: dict[str, str] = field(default_factory=dict)  # old id -> new id (first target)
    created: dict[str, str] = field(default_factory=dict)  # new technique id -> name
    to_impairment: set[str] = field(default_factory=set)  # current techniques moved there
    to_both: set[str] = field(default_factory=set)
    to_stealth: set[str] = field(default_factory=set)
    retired_with_old_phase: dict[str, str] = field(default_factory=dict)  # id -> name
    crosswalk: Path = CROSSWALK_V19


def _sid(kind: str, key: str) -> str:
    return f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, 'ttpgraph-v19-test/' + key)}"


def _relationship(src: str, rtype: str, dst: str) -> dict[str, Any]:
    return {
        "type": "relationship",
        "id": _sid("relationship", f"{src}|{rtype}|{dst}"),
        "created": MODIFIED,
        "modified": MODIFIED,
        "relationship_type": rtype,
        "source_ref": src,
        "target_ref": dst,
    }


def _technique_url(tid: str) -> str:
    return "https://attack.mitre.org/techniques/" + tid.replace(".", "/") + "/"


def build_v19(dest_dir: Path, src: Path = ENTERPRISE) -> V19:
    """Write ``enterprise-attack-19.0.json`` (a v19-shaped bundle) into ``dest_dir``."""
    data = json.loads(src.read_text(encoding="utf-8"))
    objs: list[dict[str, Any]] = data["objects"]
    out = V19(path=dest_dir / "enterprise-attack-19.0.json")
    techniques = {ext_id(o): o for o in objs if o["type"] == "attack-pattern" and ext_id(o)}

    # tactics: TA0005 renamed, TA0112 added after it in the matrix
    old = next(o for o in objs if o["type"] == "x-mitre-tactic" and ext_id(o) == STEALTH[0])
    assert old["x_mitre_shortname"] == OLD_SHORT
    new_tactic = copy.deepcopy(old)
    old.update(name=STEALTH[1], x_mitre_shortname=STEALTH[2], modified=MODIFIED)
    new_tactic.update(
        id=_sid("x-mitre-tactic", IMPAIRMENT[0]),
        name=IMPAIRMENT[1],
        x_mitre_shortname=IMPAIRMENT[2],
        created=MODIFIED,
        modified=MODIFIED,
        description="The adversary is trying to impair your defenses.",
        external_references=[
            {
                "source_name": "mitre-attack",
                "external_id": IMPAIRMENT[0],
                "url": f"https://attack.mitre.org/tactics/{IMPAIRMENT[0]}",
            }
        ],
    )
    objs.append(new_tactic)
    matrix = next(o for o in objs if o["type"] == "x-mitre-matrix")
    refs = matrix["tactic_refs"]
    refs.insert(refs.index(old["id"]) + 1, new_tactic["id"])

    # revocations from the crosswalk; targets created when 18.1 lacks them
    cw = yaml.safe_load(CROSSWALK_V19.read_text(encoding="utf-8"))
    pairs: list[tuple[str, str, str]] = [
        (a, b["id"], b["name"])
        for sec in ("techniques", "subtechniques")
        for a, b in (cw.get(sec) or {}).items()
        if b
    ]
    generic = next(p for p in pairs if p[0] == SPLIT[0])  # T1562 -> T1685
    firewall = next(p for p in pairs if p[1] == SPLIT[1][1])  # ... -> T1686
    pairs.append((SPLIT[0], firewall[1], firewall[2]))
    mapped = {p[0] for p in pairs}
    # the other Impair Defenses sub-techniques go the generic way (no current child is left
    # under a revoked parent)
    pairs += [
        (tid, generic[1], generic[2])
        for tid, o in techniques.items()
        if tid.startswith(SPLIT[0] + ".")
        and tid not in mapped
        and not o.get("revoked")
        and not o.get("x_mitre_deprecated")
    ]
    impairment_phase = [{"kill_chain_name": "mitre-attack", "phase_name": IMPAIRMENT[2]}]

    def ensure(tid: str, name: str, template: dict[str, Any]) -> dict[str, Any] | None:
        if tid in techniques:
            return techniques[tid]
        parent_id = tid.split(".")[0]
        if "." in tid and parent_id not in techniques:
            return None  # its parent is not known either: leave the pair out
        obj = copy.deepcopy(template)
        obj.update(
            id=_sid("attack-pattern", tid),
            name=name,
            created=MODIFIED,
            modified=MODIFIED,
            revoked=False,
            x_mitre_deprecated=False,
            x_mitre_is_subtechnique="." in tid,
            kill_chain_phases=impairment_phase,
            external_references=[
                {"source_name": "mitre-attack", "external_id": tid, "url": _technique_url(tid)}
            ],
        )
        objs.append(obj)
        techniques[tid] = obj
        out.created[tid] = name
        if "." in tid:
            objs.append(_relationship(obj["id"], "subtechnique-of", techniques[parent_id]["id"]))
        return obj

    targets: dict[str, list[str]] = {}
    for a, tid, name in sorted(pairs, key=lambda p: ("." in p[1], p[1], p[0])):  # parents first
        if a not in techniques or not is_current(techniques[a]):
            continue  # unknown to 18.1, or retired already
        target = ensure(tid, name, techniques[a])
        if target is None or target is techniques[a]:
            continue
        targets.setdefault(a, []).append(tid)
    for tids in targets.values():
        tids.sort()  # T1562: T1685 first, then T1686
    replaced: dict[str, str] = {}  # source STIX id -> first target STIX id
    for a, tids in targets.items():
        src_obj = techniques[a]
        src_obj.update(revoked=True, modified=MODIFIED)
        out.revoked[a] = tids[0]
        for tid in tids:
            objs.append(_relationship(src_obj["id"], "revoked-by", techniques[tid]["id"]))
        replaced[src_obj["id"]] = techniques[tids[0]]["id"]
    for o in objs:
        if (
            o["type"] == "relationship"
            and o["relationship_type"] in ("uses", "mitigates", "detects")
            and o["target_ref"] in replaced
        ):
            o["target_ref"] = replaced[o["target_ref"]]
            o["id"] = _sid("relationship", o["id"])  # a new relationship in the new release

    # moves: every current Defense Evasion technique to Stealth, Defense Impairment or both
    for tid, o in techniques.items():
        phases = o.get("kill_chain_phases") or []
        if not any(p.get("phase_name") == OLD_SHORT for p in phases):
            continue
        if o.get("revoked") or o.get("x_mitre_deprecated"):
            out.retired_with_old_phase[tid] = o["name"]
            continue
        if o["name"].startswith(("Disable", "Downgrade", "Impair")):
            new_phases, into = [IMPAIRMENT[2]], out.to_impairment
        elif tid.split(".")[0] == "T1070":
            new_phases, into = [STEALTH[2], IMPAIRMENT[2]], out.to_both
        else:
            new_phases, into = [STEALTH[2]], out.to_stealth
        kept = [p for p in phases if p.get("phase_name") != OLD_SHORT]
        o["kill_chain_phases"] = kept + [
            {"kill_chain_name": "mitre-attack", "phase_name": p} for p in new_phases
        ]
        o["modified"] = MODIFIED
        into.add(tid)
    out.path.write_text(json.dumps(data), encoding="utf-8")
    return out
