"""The diff of two release snapshots of one domain: techniques, tactics, groups (through every
path kind), the detection model; with each inventory's impact and each threat model's change."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..errors import InvalidInput
from .impact import InventoryImpact
from .model_change import ThreatModelChange
from .snapshots import ComponentDetection, DetectionSummary, ReleaseSnapshot, TechniqueState


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


class GroupChange(BaseModel):
    group_id: str
    name: str
    status: Literal["changed", "added", "retired"] = Field(
        description="changed: in both releases; added: new group; retired: revoked, deprecated "
        "or gone in the new release"
    )
    old_count: int
    new_count: int
    gained: list[str]
    lost: list[str]


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
    summary = {
        "techniques_added": len(added),
        "techniques_removed": len(removed),
        "techniques_revoked": len(revoked),
        "techniques_deprecated": len(deprecated),
        "techniques_renamed": len(renamed),
        "techniques_moved": len(moved),
        "groups_changed": sum(1 for g in groups if g.status == "changed"),
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
        groups=groups,
        detection=detection,
    )


def _group_changes(old: ReleaseSnapshot, new: ReleaseSnapshot) -> list[GroupChange]:
    o = {g.stix_id: g for g in old.groups}
    n = {g.stix_id: g for g in new.groups}
    out: list[GroupChange] = []
    for i in sorted(set(o) | set(n)):
        og, ng = o.get(i), n.get(i)
        old_current = og is not None and not og.revoked and not og.deprecated
        new_current = ng is not None and not ng.revoked and not ng.deprecated
        if not old_current and not new_current:
            continue
        before = set(og.techniques) if old_current and og else set()
        after = set(ng.techniques) if new_current and ng else set()
        if old_current and new_current and before == after:
            continue
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
            )
        )
    return sorted(out, key=lambda g: g.group_id)


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
