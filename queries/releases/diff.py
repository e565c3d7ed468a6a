"""The diff of two release snapshots of one domain: techniques, tactics, groups (through every
path kind), the detection model; with each inventory's impact and each threat model's change."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..errors import InvalidInput
from .impact import InventoryImpact
from .model_change import ThreatModelChange
from .snapshots import (
    ComponentDetection,
    DetectionSummary,
    GroupState,
    ReleaseSnapshot,
    TacticState,
    TechniqueState,
)


class TechniqueChange(BaseModel):
    technique_id: str
    name: str
    tactics: list[str] = Field(default_factory=list, description="tactics in the new release")
    is_subtechnique: bool = False


class TechniqueRevoked(TechniqueChange):
    replaced_by: str | None = None
    replaced_by_name: str | None = None


class TechniqueRenamed(TechniqueChange):
    old_name: str


class TechniqueMoved(TechniqueChange):
    old_tactics: list[str]
    added_tactics: list[str]
    removed_tactics: list[str]


class KindChange(BaseModel):
    old_count: int
    new_count: int
    gained: list[str]
    lost: list[str]


class GroupChange(BaseModel):
    group_id: str
    name: str
    status: Literal["changed", "added", "retired"] = Field(
        description="changed: in both releases; added: new group; retired: revoked, deprecated "
        "or gone in the new release"
    )
    old_count: int = Field(description="techniques by every path kind in the old release")
    new_count: int
    gained: list[str] = Field(description="techniques the group is tied to only in the new one")
    lost: list[str]
    changed_through: list[str] = Field(
        default_factory=list,
        description="the path kinds (direct, campaign, software) whose technique sets changed",
    )
    by_kind: dict[str, KindChange] = Field(
        default_factory=dict, description="path kind -> how its technique set changed"
    )


class TacticRef(BaseModel):
    tactic_id: str
    name: str
    shortname: str


class TacticRenamed(TacticRef):
    old_name: str
    old_shortname: str


class TacticFlow(TacticRef):
    techniques: list[str] = Field(
        default_factory=list, description="techniques of the old tactic now in this one"
    )
    replaced: list[str] = Field(
        default_factory=list,
        description="techniques of the old tactic revoked into a technique of this one",
    )


class TacticSplit(TacticRef):
    """An old tactic (named as in the old release) whose techniques went to several tactics of
    the new release, one of them new (or the old one gone)."""

    went_to: list[TacticFlow]
    retired: list[str] = Field(
        default_factory=list, description="its techniques retired without a replacement"
    )


class TacticMerged(TacticRef):
    """A tactic of the new release that took the techniques of several old tactics, one of them
    gone from the new release."""

    came_from: list[TacticFlow] = Field(description="the old tactics, named as they were")


class TacticChanges(BaseModel):
    added: list[TacticRef] = Field(default_factory=list)
    removed: list[TacticRef] = Field(default_factory=list)
    renamed: list[TacticRenamed] = Field(
        default_factory=list, description="same tactic (STIX id), new name or shortname"
    )
    split: list[TacticSplit] = Field(default_factory=list)
    merged: list[TacticMerged] = Field(default_factory=list)
    flows: list[TacticSplit] = Field(
        default_factory=list,
        description="where the techniques of every old tactic that lost some went (splits, "
        "merges and removals included)",
    )


class ComponentChange(BaseModel):
    data_component_id: str
    name: str
    old_techniques: int = Field(description="techniques it detected in the old release")
    new_techniques: int = Field(description="techniques it detects in the new release")
    old_model: str = Field(description="how: 'DETECTS' (v17), 'analytics' (v18), both or none")
    new_model: str
    kept: int
    gained: list[str]
    lost: list[str]


class DetectionChange(BaseModel):
    old: DetectionSummary
    new: DetectionSummary
    model_changed: bool
    note: str
    components: list[ComponentChange] = Field(
        description="data components whose detected techniques changed"
    )


class ReleaseDiff(BaseModel):
    domain: str
    old_version: str | None
    new_version: str | None
    old_source: str
    new_source: str
    summary: dict[str, int]
    added: list[TechniqueChange]
    removed: list[TechniqueChange]
    revoked: list[TechniqueRevoked]
    deprecated: list[TechniqueChange]
    renamed: list[TechniqueRenamed]
    moved: list[TechniqueMoved]
    tactics: TacticChanges = Field(default_factory=TacticChanges)
    groups: list[GroupChange]
    detection: DetectionChange
    impact: list[InventoryImpact] | None = Field(
        default=None,
        description="each inventory's rules that the new release breaks (None: not asked)",
    )
    threat_models: list[ThreatModelChange] | None = Field(
        default=None, description="each threat model's coverage change (None: none compared)"
    )
    notes: list[str] = Field(default_factory=list)


def _tid(t: TechniqueState) -> str:
    return t.attack_id or t.stix_id


def _change(t: TechniqueState) -> TechniqueChange:
    return TechniqueChange(
        technique_id=_tid(t), name=t.name, tactics=t.tactics, is_subtechnique=t.is_subtechnique
    )


def _how(c: ComponentDetection | None) -> str:
    if c is None:
        return "none"
    if c.direct and c.via:
        return "DETECTS + analytics"
    return "DETECTS" if c.direct else ("analytics" if c.via else "none")


def diff_snapshots(old: ReleaseSnapshot, new: ReleaseSnapshot) -> ReleaseDiff:
    """What changed from ``old`` to ``new`` (same domain). Techniques are matched by STIX id,
    which survives renames and moves; ATT&CK ids are what the diff reports."""
    if old.domain != new.domain:
        raise InvalidInput(f"cannot compare {old.domain} with {new.domain}")
    o = {t.stix_id: t for t in old.techniques}
    n = {t.stix_id: t for t in new.techniques}
    key = lambda c: c.technique_id  # noqa: E731
    added = sorted((_change(t) for i, t in n.items() if i not in o and t.current), key=key)
    removed = sorted((_change(t) for i, t in o.items() if i not in n and t.current), key=key)
    revoked, deprecated, renamed, moved = [], [], [], []
    for i, nt in n.items():
        ot = o.get(i)
        if ot is None:
            continue
        if nt.revoked and not ot.revoked:
            revoked.append(
                TechniqueRevoked(
                    **_change(nt).model_dump(),
                    replaced_by=nt.replaced_by,
                    replaced_by_name=nt.replaced_by_name,
                )
            )
            continue
        if nt.deprecated and not ot.deprecated and not nt.revoked:
            deprecated.append(_change(nt))
            continue
        if not nt.current:
            continue
        if nt.name != ot.name:
            renamed.append(TechniqueRenamed(**_change(nt).model_dump(), old_name=ot.name))
        if set(nt.tactics) != set(ot.tactics):
            moved.append(
                TechniqueMoved(
                    **_change(nt).model_dump(),
                    old_tactics=ot.tactics,
                    added_tactics=sorted(set(nt.tactics) - set(ot.tactics)),
                    removed_tactics=sorted(set(ot.tactics) - set(nt.tactics)),
                )
            )
    groups = _group_changes(old, new)
    detection = _detection_change(old, new)
    tactics = tactic_changes(old, new)
    summary = {
        "tactics_added": len(tactics.added),
        "tactics_removed": len(tactics.removed),
        "tactics_renamed": len(tactics.renamed),
        "tactics_split": len(tactics.split),
        "tactics_merged": len(tactics.merged),
        "techniques_added": len(added),
        "techniques_removed": len(removed),
        "techniques_revoked": len(revoked),
        "techniques_deprecated": len(deprecated),
        "techniques_renamed": len(renamed),
        "techniques_moved": len(moved),
        "groups_changed": sum(1 for g in groups if g.status == "changed"),
        **{
            f"groups_changed_{kind}": sum(
                1 for g in groups if g.status == "changed" and kind in g.changed_through
            )
            for kind in KINDS
        },
        "groups_added": sum(1 for g in groups if g.status == "added"),
        "groups_retired": sum(1 for g in groups if g.status == "retired"),
        "data_components_changed": len(detection.components),
    }
    return ReleaseDiff(
        domain=new.domain,
        old_version=old.version,
        new_version=new.version,
        old_source=old.source,
        new_source=new.source,
        summary=summary,
        added=added,
        removed=removed,
        revoked=sorted(revoked, key=key),
        deprecated=sorted(deprecated, key=key),
        renamed=sorted(renamed, key=key),
        moved=sorted(moved, key=key),
        tactics=tactics,
        groups=groups,
        detection=detection,
    )


KINDS = ("direct", "campaign", "software")  # the path kinds (queries.actors.PathKind)


def _kind_sets(g: GroupState | None, current: bool) -> dict[str, set[str]]:
    if g is None or not current:
        return {k: set() for k in KINDS}
    return {
        "direct": set(g.techniques),
        "campaign": set(g.campaign_techniques),
        "software": set(g.software_techniques),
    }


def _group_changes(old: ReleaseSnapshot, new: ReleaseSnapshot) -> list[GroupChange]:
    """Groups whose techniques changed through any path kind (direct, campaign, software: the
    group's own and its campaigns'), with the change of each kind."""
    o = {g.stix_id: g for g in old.groups}
    n = {g.stix_id: g for g in new.groups}
    out: list[GroupChange] = []
    for i in sorted(set(o) | set(n)):
        og, ng = o.get(i), n.get(i)
        old_current = og is not None and not og.revoked and not og.deprecated
        new_current = ng is not None and not ng.revoked and not ng.deprecated
        if not old_current and not new_current:
            continue
        ob, nb = _kind_sets(og, old_current), _kind_sets(ng, new_current)
        by_kind = {
            k: KindChange(
                old_count=len(ob[k]),
                new_count=len(nb[k]),
                gained=sorted(nb[k] - ob[k]),
                lost=sorted(ob[k] - nb[k]),
            )
            for k in KINDS
            if ob[k] != nb[k]
        }
        if old_current and new_current and not by_kind:
            continue
        before, after = set().union(*ob.values()), set().union(*nb.values())
        status = (
            "changed" if old_current and new_current else ("added" if new_current else "retired")
        )
        ref = ng if ng is not None else og
        assert ref is not None
        out.append(
            GroupChange(
                group_id=ref.attack_id or ref.stix_id,
                name=ref.name,
                status=status,  # type: ignore[arg-type]
                old_count=len(before),
                new_count=len(after),
                gained=sorted(after - before),
                lost=sorted(before - after),
                changed_through=list(by_kind),
                by_kind=by_kind,
            )
        )
    return sorted(out, key=lambda g: g.group_id)


def _tref(t: TacticState) -> dict[str, str]:
    return {"tactic_id": t.attack_id or t.stix_id, "name": t.name, "shortname": t.shortname}


def tactic_changes(old: ReleaseSnapshot, new: ReleaseSnapshot) -> TacticChanges:
    """Tactics added, removed and renamed (matched by STIX id), and where the techniques of each
    old tactic went: a technique of old tactic X now in tactic Y (and not in Y before, unless Y
    is X) flows from X to Y; one revoked flows to its replacement's tactics. X is **split** when
    its techniques went to several tactics, one of them new in this release (or X is gone); Y
    **merged** old tactics when it took techniques from several, one of them gone."""
    ot = {t.stix_id: t for t in old.tactics if t.current}
    nt = {t.stix_id: t for t in new.tactics if t.current}
    o_short = {t.shortname: i for i, t in ot.items()}
    n_short = {t.shortname: i for i, t in nt.items()}
    n_tech = {t.stix_id: t for t in new.techniques}
    n_by_aid = {t.attack_id: t for t in new.techniques if t.attack_id and t.current}
    moved: dict[str, dict[str, list[str]]] = {}  # old tactic -> new tactic -> technique ids
    replaced: dict[str, dict[str, list[str]]] = {}  # ... -> old ids revoked into it
    retired: dict[str, list[str]] = {}
    for t in old.techniques:
        if not t.current:
            continue
        tid = t.attack_id or t.stix_id
        before = {o_short[s] for s in t.tactics if s in o_short}
        now = n_tech.get(t.stix_id)
        target, into = now, moved
        if now is None or not now.current:
            target = n_by_aid.get(now.replaced_by or "") if now is not None else None
            into = replaced
        after = {n_short[s] for s in target.tactics if s in n_short} if target else set()
        for x in before:
            dest = after - (before - {x}) if into is moved else after
            if not dest and into is replaced:
                retired.setdefault(x, []).append(tid)
            for y in dest:
                into.setdefault(x, {}).setdefault(y, []).append(tid)
    flows: list[TacticSplit] = []
    split: list[TacticSplit] = []
    for x in sorted(ot, key=lambda i: ot[i].attack_id or i):
        dests = set(moved.get(x, {})) | set(replaced.get(x, {}))
        if dests <= {x} and x in nt and not retired.get(x):
            continue  # every technique stayed (or left only for its other tactics)
        went = [
            TacticFlow(
                **_tref(nt[y]),
                techniques=sorted(moved.get(x, {}).get(y, [])),
                replaced=sorted(replaced.get(x, {}).get(y, [])),
            )
            for y in sorted(dests, key=lambda i: (-len(moved.get(x, {}).get(i, [])), i))
        ]
        entry = TacticSplit(**_tref(ot[x]), went_to=went, retired=sorted(retired.get(x, [])))
        if dests - {x}:
            flows.append(entry)
        if len(dests) >= 2 and (x not in nt or any(y not in ot for y in dests)):
            split.append(entry)
    merged: list[TacticMerged] = []
    for y in sorted(nt, key=lambda i: nt[i].attack_id or i):
        sources = [x for x in ot if y in moved.get(x, {}) or y in replaced.get(x, {})]
        if len(sources) >= 2 and any(x not in nt for x in sources):
            merged.append(
                TacticMerged(
                    **_tref(nt[y]),
                    came_from=[
                        TacticFlow(
                            **_tref(ot[x]),
                            techniques=sorted(moved.get(x, {}).get(y, [])),
                            replaced=sorted(replaced.get(x, {}).get(y, [])),
                        )
                        for x in sorted(sources, key=lambda i: ot[i].attack_id or i)
                    ],
                )
            )
    key = lambda t: t.tactic_id  # noqa: E731
    return TacticChanges(
        added=sorted((TacticRef(**_tref(t)) for i, t in nt.items() if i not in ot), key=key),
        removed=sorted((TacticRef(**_tref(t)) for i, t in ot.items() if i not in nt), key=key),
        renamed=sorted(
            (
                TacticRenamed(**_tref(nt[i]), old_name=t.name, old_shortname=t.shortname)
                for i, t in ot.items()
                if i in nt and (nt[i].name, nt[i].shortname) != (t.name, t.shortname)
            ),
            key=key,
        ),
        split=split,
        merged=merged,
        flows=flows,
    )


def _detection_change(old: ReleaseSnapshot, new: ReleaseSnapshot) -> DetectionChange:
    o = {c.stix_id: c for c in old.components}
    n = {c.stix_id: c for c in new.components}
    changes: list[ComponentChange] = []
    for i in sorted(set(o) | set(n)):
        oc, nc = o.get(i), n.get(i)
        before = set(oc.direct) | set(oc.via) if oc else set()
        after = set(nc.direct) | set(nc.via) if nc else set()
        if before == after and _how(oc) == _how(nc):
            continue
        ref = nc if nc is not None else oc
        assert ref is not None
        changes.append(
            ComponentChange(
                data_component_id=ref.attack_id or ref.stix_id,
                name=ref.name,
                old_techniques=len(before),
                new_techniques=len(after),
                old_model=_how(oc),
                new_model=_how(nc),
                kept=len(before & after),
                gained=sorted(after - before),
                lost=sorted(before - after),
            )
        )
    changes.sort(key=lambda c: c.data_component_id)
    om, nm = old.detection.model, new.detection.model
    if om != nm:
        note = (
            f"the detection model changed from {om} to {nm}: "
            f"{old.detection.component_detects} data-component DETECTS edges "
            f"({old.detection.component_techniques} techniques) became "
            f"{new.detection.strategies} detection strategies with {new.detection.analytics} "
            f"analytics over {new.detection.log_sources} log sources "
            f"({new.detection.strategy_techniques} techniques); a data component now detects a "
            "technique through the analytics whose log sources it feeds"
        )
    else:
        note = f"same detection model ({nm})"
    return DetectionChange(
        old=old.detection, new=new.detection, model_changed=om != nm, note=note, components=changes
    )


ReleaseDiff.model_rebuild()
