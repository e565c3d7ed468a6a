"""ATT&CK releases over time: what changes between two releases, and what that means for the
organisation's detection rules.

A :class:`ReleaseSnapshot` is what a diff compares: one domain's techniques (names, tactics,
revoked/deprecated and the replacement), groups with the techniques each uses directly, and the
detection model (data components that DETECTS techniques in ATT&CK v17; detection strategies ->
analytics -> log sources -> data components in v18). A snapshot comes from the loaded graph
(:func:`snapshot_from_graph`) or from a bundle (``loader.diff.snapshot_from_objects``), and
:func:`diff_snapshots` compares two of them, whatever their origin. :func:`rule_impact` judges the
techniques each inventory rule is tagged with against a release.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

from .actors import path_kinds
from .catalog import Q
from .errors import InvalidInput, NotFound
from .graph import Graph
from .technique_index import Crosswalk, CrosswalkEntry, TechniqueIndex
from .threat_models import ThreatModel

DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")
_ALIASES = {"enterprise": "enterprise-attack", "mobile": "mobile-attack", "ics": "ics-attack"}
_BIG = 1_000_000  # every row of a release (ATT&CK has ~1,400 techniques per domain at most)


def normalize_domain(value: str) -> str:
    text = value.strip().lower()
    text = _ALIASES.get(text, text)
    if text not in DOMAINS:
        raise InvalidInput(f"unknown domain {value!r}: use enterprise, mobile or ics")
    return text


# ------------------------------------------------------------------------------- snapshots


class TechniqueState(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    tactics: list[str] = Field(description="tactic shortnames, sorted")
    platforms: list[str] = Field(default_factory=list)
    is_subtechnique: bool = False
    revoked: bool = False
    deprecated: bool = False
    replaced_by: str | None = Field(default=None, description="ATT&CK id of the final replacement")
    replaced_by_name: str | None = None

    @property
    def current(self) -> bool:
        return not self.revoked and not self.deprecated


class GroupState(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    revoked: bool = False
    deprecated: bool = False
    techniques: list[str] = Field(description="ATT&CK ids of techniques used directly, sorted")
    campaign_techniques: list[str] = Field(
        default_factory=list, description="used in campaigns attributed to the group, sorted"
    )
    software_techniques: list[str] = Field(
        default_factory=list,
        description="used by the group's software (its own and its campaigns'), sorted",
    )


class ComponentDetection(BaseModel):
    stix_id: str
    attack_id: str | None
    name: str
    retired: bool = False
    direct: list[str] = Field(description="techniques the component DETECTS itself (v17 model)")
    via: list[str] = Field(
        description="techniques reached through log sources -> analytics -> detection strategies "
        "(v18 model)"
    )


class DetectionSummary(BaseModel):
    model: Literal["data components (v17)", "detection strategies (v18)", "both", "none"]
    component_detects: int = Field(description="current DataComponent-DETECTS->Technique edges")
    component_techniques: int = Field(description="techniques detected by data components")
    strategies: int = Field(description="current detection strategies")
    strategy_techniques: int = Field(description="techniques detected by detection strategies")
    analytics: int
    log_sources: int = Field(description="log sources the current analytics use")


def detection_model(component_detects: int, strategies: int) -> str:
    if component_detects and strategies:
        return "both"
    if component_detects:
        return "data components (v17)"
    if strategies:
        return "detection strategies (v18)"
    return "none"


class ReleaseSnapshot(BaseModel):
    domain: str
    version: str | None
    source: str
    techniques: list[TechniqueState]
    groups: list[GroupState]
    components: list[ComponentDetection]
    detection: DetectionSummary
    warnings: list[str] = Field(
        default_factory=list,
        description="what the bundle's validation let through with a word (a retired technique "
        "whose kill chain phase names no tactic of the release)",
    )


def snapshot_from_graph(graph: Graph, *, domain: str) -> ReleaseSnapshot:
    """The loaded release of ``domain`` as a snapshot; NotFound when none is loaded."""
    domain = normalize_domain(domain)
    rel = [r for r in graph.read(Q.releases, limit=100) if r["domain"] == domain]
    if not rel:
        raise NotFound(f"no {domain} release is loaded: load one first (ttpgraph load)")
    techniques = [
        TechniqueState(**{**r, "tactics": sorted(set(r["tactics"]))})
        for r in graph.read(Q.release_techniques, domain=domain, limit=_BIG)
    ]
    groups = [
        GroupState(
            **{
                **r,
                "techniques": sorted(r["techniques"]),
                "campaign_techniques": sorted(r["campaign_techniques"]),
                "software_techniques": sorted(r["software_techniques"]),
            }
        )
        for r in graph.read(Q.release_group_techniques, domain=domain, limit=_BIG)
    ]
    components = [
        ComponentDetection(**{**r, "direct": sorted(r["direct"]), "via": sorted(r["via"])})
        for r in graph.read(Q.release_component_detections, domain=domain, limit=_BIG)
    ]
    c = graph.read(Q.release_detection_counts, domain=domain)[0]
    detection = DetectionSummary(
        model=detection_model(c["component_detects"], c["strategies"]),  # type: ignore[arg-type]
        **c,
    )
    return ReleaseSnapshot(
        domain=domain,
        version=rel[0]["version"],
        source=f"graph ({rel[0]['source']})",
        techniques=techniques,
        groups=groups,
        components=components,
        detection=detection,
    )


# ------------------------------------------------------------------------------------ diff


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


class RuleImpact(BaseModel):
    inventory: str
    rule_id: str
    rule_name: str
    file: str = ""
    technique_id: str
    problem: Literal["revoked", "deprecated", "unknown"]
    replacement: str | None = Field(
        default=None, description="the technique to retag to (revoked ones)"
    )
    replacement_name: str | None = None
    note: str


class InventoryImpact(BaseModel):
    inventory: str
    rules: int = Field(description="rules in the inventory")
    affected_rules: int
    items: list[RuleImpact]


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


# ---------------------------------------------------------------------------------- impact


class TaggedRule(BaseModel):
    inventory: str
    rule_id: str
    rule_name: str
    file: str = ""
    status: str = ""
    tagged: list[str]


def inventory_rules(graph: Graph, *, limit: int = _BIG) -> list[TaggedRule]:
    """Every rule of every inventory with the technique ids it is tagged with."""
    return [TaggedRule(**r) for r in graph.read(Q.release_inventory_rules, limit=limit)]


def technique_domains(graph: Graph, ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = graph.read(Q.release_technique_domains, technique_ids=wanted, limit=len(wanted))
    return {r["technique_id"]: r["domains"] for r in rows}


def rule_impact(
    rules: list[TaggedRule],
    release: ReleaseSnapshot,
    *,
    other_domains: dict[str, list[str]] | None = None,
    also_domain: Iterable[str] = (),
) -> list[InventoryImpact]:
    """Rules tagged with techniques that ``release`` has revoked or deprecated or does not know.

    ``other_domains`` (technique id -> domains holding it in the graph) keeps an id of another
    domain (an ICS technique in an Enterprise diff) from counting as unknown; ``also_domain``
    are ids known to belong to this domain (the old release's), judged even if other domains
    hold an id of the same name.
    """
    by_id: dict[str, TechniqueState] = {}
    for tech in release.techniques:
        if tech.attack_id and (tech.attack_id not in by_id or tech.current):
            by_id[tech.attack_id] = tech
    mine = set(also_domain) | set(by_id)
    elsewhere = other_domains or {}
    by_inventory: dict[str, list[TaggedRule]] = {}
    for rule in rules:
        by_inventory.setdefault(rule.inventory, []).append(rule)
    out = []
    for inventory, inv_rules in sorted(by_inventory.items()):
        items: list[RuleImpact] = []
        for rule in inv_rules:
            for tid in sorted(set(rule.tagged)):
                t = by_id.get(tid)
                base = {
                    "inventory": inventory,
                    "rule_id": rule.rule_id,
                    "rule_name": rule.rule_name,
                    "file": rule.file,
                    "technique_id": tid,
                }
                if t is None:
                    others = [d for d in elsewhere.get(tid, []) if d != release.domain]
                    if others and tid not in mine:
                        continue  # another domain's technique
                    items.append(
                        RuleImpact(
                            **base,
                            problem="unknown",
                            note=f"{tid} is not a technique of {release.domain} "
                            f"{release.version or ''}".rstrip(),
                        )
                    )
                elif t.revoked:
                    note = f"{tid} was revoked" + (
                        f": retag to {t.replaced_by} ({t.replaced_by_name})"
                        if t.replaced_by
                        else " without a replacement"
                    )
                    items.append(
                        RuleImpact(
                            **base,
                            problem="revoked",
                            replacement=t.replaced_by,
                            replacement_name=t.replaced_by_name,
                            note=note,
                        )
                    )
                elif t.deprecated:
                    items.append(
                        RuleImpact(
                            **base,
                            problem="deprecated",
                            note=f"{tid} ({t.name}) is deprecated: no replacement; review the rule",
                        )
                    )
        out.append(
            InventoryImpact(
                inventory=inventory,
                rules=len(inv_rules),
                affected_rules=len({(i.rule_id, i.file) for i in items}),
                items=items,
            )
        )
    return out


def release_impact(graph: Graph, *, domain: str) -> list[InventoryImpact]:
    """Each inventory's rules tagged with techniques the loaded ``domain`` release has revoked or
    deprecated or does not know, with the replacement to retag to."""
    snap = snapshot_from_graph(graph, domain=domain)
    rules = inventory_rules(graph)
    ids = {t for r in rules for t in r.tagged}
    return rule_impact(rules, snap, other_domains=technique_domains(graph, ids))


# ---------------------------------------------------------------------------- threat models

Status = Literal["covered", "partial", "gap"]


class ModelSide(BaseModel):
    version: str | None
    techniques: int = Field(description="techniques of the threat model in this release")
    covered: int
    partial: int = Field(description="covered only through a parent or sub-technique")
    gaps: int
    coverage_pct: float


class ModelTechniqueChange(BaseModel):
    technique_id: str
    name: str
    old: Status | None = Field(description="status in the old release (None: not in the model)")
    new: Status | None = Field(description="status in the new release (None: not in the model)")
    note: str


class ModelTacticChange(BaseModel):
    tactic: str
    old_total: int
    old_covered: int
    new_total: int
    new_covered: int


class ThreatModelChange(BaseModel):
    name: str
    actors: list[str] = Field(description="'Name (id)' of each actor")
    inventory: str | None
    old: ModelSide | None = Field(default=None, description="None: the model has no inventory")
    new: ModelSide | None = None
    change_pct: float | None = Field(
        default=None, description="coverage change in percentage points (new - old)"
    )
    techniques: list[ModelTechniqueChange] = Field(
        description="techniques that enter or leave the model or change status"
    )
    tactics: list[ModelTacticChange] = Field(description="tactics whose figures change")
    notes: list[str] = Field(default_factory=list)
    # every technique of the model in the new release: (id, tactics, status), for the layer
    _new: list[tuple[str, list[str], Status]] = PrivateAttr(default_factory=list)
    _domain: str = PrivateAttr(default="enterprise-attack")


class InventoryOptions(BaseModel):
    """How an inventory counts coverage through parents and sub-techniques (its import options)."""

    parent_coverage: str = "partial"
    subtechnique_coverage: str = "partial"
    crosswalk: list[tuple[str, str, str | None]] = Field(
        default_factory=list,
        description="the import's crosswalk pairs (source id, target id, target name), read in "
        "both directions for tags a release does not resolve",
    )

    def crosswalk_of(self) -> Crosswalk | None:
        entries = [CrosswalkEntry(src, dst, name) for src, dst, name in self.crosswalk]
        return Crosswalk("inventory", entries) if entries else None


class _Release:
    """One snapshot, indexed for judging a threat model; ids resolve through the same
    :class:`TechniqueIndex` an inventory import uses."""

    def __init__(self, snap: ReleaseSnapshot) -> None:
        self.snap = snap
        self.by_id: dict[str, TechniqueState] = {}
        for t in snap.techniques:
            if t.attack_id and (t.attack_id not in self.by_id or t.current):
                self.by_id[t.attack_id] = t
        self.index = TechniqueIndex(
            {
                "attack_id": t.attack_id,
                "stix_id": t.stix_id,
                "name": t.name,
                "revoked": t.revoked,
                "deprecated": t.deprecated,
                "is_subtechnique": t.is_subtechnique,
                "parent_id": t.attack_id.split(".")[0] if t.is_subtechnique else None,
                "replaced_by": t.replaced_by,
            }
            for t in self.by_id.values()
            if t.attack_id
        )
        self.groups: dict[str, GroupState] = {}
        for g in snap.groups:
            prev = self.groups.get(g.attack_id or "")
            if g.attack_id and (prev is None or (prev.revoked or prev.deprecated)):
                self.groups[g.attack_id] = g

    def resolve(self, tid: str, crosswalk: Crosswalk | None = None) -> list[str]:
        """The current techniques ``tid`` stands for in this release, as an import reads it."""
        return self.index.resolve(tid, crosswalk).targets

    def state(self, tid: str) -> str:
        """'current', or what happened to ``tid``, said with the release's version."""
        version = self.snap.version or "this release"
        t = self.by_id.get(tid)
        if t is None:
            return f"not in {version}"
        if t.revoked:
            to = f"into {t.replaced_by}" if t.replaced_by else "without a replacement"
            return f"revoked {to} in {version}"
        return f"deprecated in {version}" if t.deprecated else "current"


def _judge(
    rel: _Release,
    model: ThreatModel,
    rules: list[TaggedRule],
    opts: InventoryOptions,
    org_techniques: dict[str, list[str]],
) -> tuple[dict[str, Status], dict[str, set[str]], dict[str, set[str]], list[str]]:
    """Status of each technique of ``model`` in one release: (status, actors using it, tags that
    cover it directly, notes)."""
    notes: list[str] = []
    plats = {p.lower() for p in model.platforms}
    users: dict[str, set[str]] = {}
    version = rel.snap.version or "the release"
    for actor in model.actors:
        if actor.group_id.startswith(("intrusion-set--", "threat-actor--")):
            techs = {x for t in org_techniques.get(actor.group_id, []) for x in rel.resolve(t)}
        else:
            g = rel.groups.get(actor.group_id)
            if g is None or g.revoked or g.deprecated:
                what = "is not" if g is None else "is revoked or deprecated"
                notes.append(f"{actor.name} ({actor.group_id}) {what} in {version}")
                continue
            techs = set(g.techniques) | set(g.campaign_techniques)
            if model.include_software:
                techs |= set(g.software_techniques)
        for tid in techs:
            t = rel.by_id.get(tid)
            if t is None or not t.current:
                continue
            if plats and not any(p.lower() in plats for p in t.platforms):
                continue
            users.setdefault(tid, set()).add(actor.group_id)
    direct: dict[str, set[str]] = {}
    crosswalk = opts.crosswalk_of()
    for rule in rules:
        for tag in rule.tagged:
            for x in rel.resolve(tag, crosswalk):
                direct.setdefault(x, set()).add(tag)
    status: dict[str, Status] = {}
    for tid in users:
        t = rel.by_id[tid]
        parent = tid.split(".")[0] if t.is_subtechnique and "." in tid else None
        on_parent = parent is not None and parent in direct
        on_sub = any(c in direct for c in rel.index.children.get(tid, []))
        if tid in direct or (on_parent and opts.parent_coverage == "full"):
            status[tid] = "covered"
        elif (on_parent and opts.parent_coverage == "partial") or (
            on_sub and opts.subtechnique_coverage == "partial"
        ):
            status[tid] = "partial"
        else:
            status[tid] = "gap"
    return status, users, direct, notes


def _side(version: str | None, status: dict[str, Status], partial_covered: bool) -> ModelSide:
    covered = sum(
        1 for s in status.values() if s == "covered" or (s == "partial" and partial_covered)
    )
    total = len(status)
    return ModelSide(
        version=version,
        techniques=total,
        covered=covered,
        partial=sum(1 for s in status.values() if s == "partial"),
        gaps=total - covered,
        coverage_pct=round(100 * covered / total, 1) if total else 0.0,
    )


def model_change(
    model: ThreatModel,
    old: ReleaseSnapshot,
    new: ReleaseSnapshot,
    *,
    rules: list[TaggedRule],
    options: InventoryOptions | None = None,
    org_techniques: dict[str, list[str]] | None = None,
) -> ThreatModelChange:
    """How ``model``'s coverage changes from ``old`` to ``new``: the actors' techniques in each
    release (directly, through campaigns, with ``include_software`` through software; filtered by
    platform) held against the inventory's rules, their tags resolved in each release the way an
    import resolves them (revoked -> replacement; deprecated and unknown ones cover nothing), and
    coverage through parents and sub-techniques per the inventory's options."""
    opts = options or InventoryOptions()
    org = org_techniques or {}
    mine = [r for r in rules if r.inventory == model.inventory]
    o_rel, n_rel = _Release(old), _Release(new)
    o_status, o_users, o_direct, o_notes = _judge(o_rel, model, mine, opts, org)
    n_status, n_users, n_direct, n_notes = _judge(n_rel, model, mine, opts, org)
    notes = [f"old: {x}" for x in o_notes] + [f"new: {x}" for x in n_notes]
    if model.domain and model.domain != new.domain:
        notes.append(f"the model is filtered to {model.domain}; this diff is of {new.domain}")
    names = {a.group_id: a.name for a in model.actors}

    def who(ids: set[str]) -> str:
        return ", ".join(sorted(names.get(i, i) for i in ids))

    changes: list[ModelTechniqueChange] = []
    for tid in sorted(set(o_status) | set(n_status)):
        a, b = o_status.get(tid), n_status.get(tid)
        if a == b and o_users.get(tid) == n_users.get(tid):
            continue
        t = n_rel.by_id.get(tid) or o_rel.by_id[tid]
        if a is None:
            was = o_rel.state(tid)
            note = (
                f"new in {new.version or 'the new release'}"
                if tid not in o_rel.by_id
                else f"now used by {who(n_users[tid] - o_users.get(tid, set()) or n_users[tid])}"
                + ("" if was == "current" else f" ({was.replace(' in ', ' in the old ', 1)})")
            )
        elif b is None:
            now = n_rel.state(tid)
            note = (
                now
                if now != "current"
                else f"no longer used by {who(o_users[tid])}"
                if not n_users.get(tid)
                else "filtered out"
            )
        elif a != b:
            lost = {x for x in o_direct.get(tid, set()) if x not in n_direct.get(tid, set())}
            gained = {x for x in n_direct.get(tid, set()) if x not in o_direct.get(tid, set())}
            parts = []
            if lost:
                parts.append(
                    "rule tags no longer cover it: "
                    + ", ".join(f"{x} ({n_rel.state(x)})" for x in sorted(lost))
                )
            if gained:
                parts.append("now covered by rules tagged " + ", ".join(sorted(gained)))
            note = "; ".join(parts) or "coverage through its parent or sub-techniques changed"
        else:
            gained_by = n_users[tid] - o_users[tid]
            lost_by = o_users[tid] - n_users[tid]
            note = "; ".join(
                x
                for x in (
                    f"now also used by {who(gained_by)}" if gained_by else "",
                    f"no longer used by {who(lost_by)}" if lost_by else "",
                )
                if x
            )
        changes.append(ModelTechniqueChange(technique_id=tid, name=t.name, old=a, new=b, note=note))

    pc = model.partial_counts_as_covered

    def counted(s: Status | None) -> bool:
        return s == "covered" or (s == "partial" and pc)

    tactic_rows: dict[str, list[int]] = {}
    for status, rel, base in ((o_status, o_rel, 0), (n_status, n_rel, 2)):
        for tid, s in status.items():
            for tactic in rel.by_id[tid].tactics:
                row = tactic_rows.setdefault(tactic, [0, 0, 0, 0])
                row[base] += 1
                row[base + 1] += counted(s)
    tactics = [
        ModelTacticChange(
            tactic=k, old_total=v[0], old_covered=v[1], new_total=v[2], new_covered=v[3]
        )  # fmt: skip
        for k, v in sorted(tactic_rows.items())
        if (v[0], v[1]) != (v[2], v[3])
    ]
    result = ThreatModelChange(
        name=model.name,
        actors=[f"{a.name} ({a.group_id})" for a in model.actors],
        inventory=model.inventory,
        techniques=changes,
        tactics=tactics,
        notes=notes,
    )
    result._new = [(t, sorted(n_rel.by_id[t].tactics), st) for t, st in sorted(n_status.items())]
    result._domain = new.domain
    if model.inventory:
        result.old = _side(old.version, o_status, pc)
        result.new = _side(new.version, n_status, pc)
        result.change_pct = round(result.new.coverage_pct - result.old.coverage_pct, 1)
    else:
        result.notes.append("no inventory: only the techniques of the model are compared")
    return result


ReleaseDiff.model_rebuild()


def inventory_options(graph: Graph, inventory: str) -> InventoryOptions | None:
    """An inventory's coverage options and crosswalk pairs; None when it does not exist."""
    import json

    rows = graph.read(Q.inventory_info, inventory=inventory)
    if not rows:
        return None
    try:
        opts = json.loads(rows[0]["options"] or "{}")
        pairs = json.loads(rows[0]["crosswalk"] or "[]")
    except (TypeError, ValueError):
        opts, pairs = {}, []
    crosswalk: list[tuple[str, str, str | None]] = []
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) >= 2 and all(isinstance(x, str) for x in pair[:2]):
            name = pair[2] if len(pair) > 2 and isinstance(pair[2], str) else None
            crosswalk.append((pair[0], pair[1], name))
    return InventoryOptions(
        parent_coverage=opts.get("parent_coverage", "partial"),
        subtechnique_coverage=opts.get("subtechnique_coverage", "partial"),
        crosswalk=crosswalk,
    )


def threat_model_changes(
    graph: Graph,
    old: ReleaseSnapshot,
    new: ReleaseSnapshot,
    *,
    models: list[ThreatModel] | None = None,
    rules: list[TaggedRule] | None = None,
    notes: list[str] | None = None,
) -> list[ThreatModelChange]:
    """How each threat model's coverage changes from ``old`` to ``new`` (``models`` None: every
    saved threat model filtered to no other domain than the diff's; those skipped are said in
    ``notes``). The organisation's own clusters bring the techniques the graph holds for them,
    judged against each release."""
    from .threat_models import list_threat_models

    if models is None:
        chosen = []
        for m in list_threat_models(graph):
            if m.domain and m.domain != new.domain:
                if notes is not None:
                    notes.append(f"threat model {m.name!r} is for {m.domain}: not compared")
            else:
                chosen.append(m)
    else:
        chosen = models
    if not chosen:
        return []
    all_rules = inventory_rules(graph) if rules is None else rules
    out = []
    options_of = {
        inv: inventory_options(graph, inv) for inv in {m.inventory for m in chosen if m.inventory}
    }
    for model in chosen:
        options = options_of.get(model.inventory) if model.inventory else None
        clusters = [
            a.group_id
            for a in model.actors
            if a.group_id.startswith(("intrusion-set--", "threat-actor--"))
        ]
        org: dict[str, list[str]] = {}
        if clusters:
            rows = graph.read(
                Q.coverage_threat_model,
                group_ids=clusters,
                kinds=path_kinds(model.include_software),
                domain=new.domain,
                platforms=[],
            )
            for row in rows:
                for a in row["actors"]:
                    org.setdefault(a["group_id"], []).append(row["technique_id"])
        change = model_change(model, old, new, rules=all_rules, options=options, org_techniques=org)
        if model.inventory and options is None:
            change.notes.append(f"inventory {model.inventory!r} no longer exists: no rule counted")
        out.append(change)
    return out


# ------------------------------------------------------------------------ layer, markdown

ADDED_COLOR = "#8ec843"
CHANGED_COLOR = "#ffe766"
RETIRED_COLOR = "#ff6666"


def diff_layer(diff: ReleaseDiff) -> dict[str, object]:
    """The diff as an ATT&CK Navigator layer (format 4.5) for the new release: added techniques
    green, renamed or moved ones yellow, revoked, deprecated or removed ones red, each with a
    comment saying what changed."""
    from .layers import build_layer

    entries: dict[str, dict[str, object]] = {}
    severity = {ADDED_COLOR: 0, CHANGED_COLOR: 1, RETIRED_COLOR: 2}

    def add(c: TechniqueChange, color: str, text: str) -> None:
        e = entries.setdefault(
            c.technique_id,
            {"technique_id": c.technique_id, "tactics": c.tactics, "color": color, "notes": []},
        )
        if severity[color] > severity[str(e["color"])]:
            e["color"] = color
        notes = e["notes"]
        assert isinstance(notes, list)
        notes.append(text)

    for c in diff.added:
        add(c, ADDED_COLOR, f"added in {diff.new_version}")
    for r in diff.renamed:
        add(r, CHANGED_COLOR, f"renamed from '{r.old_name}'")
    for m in diff.moved:
        add(m, CHANGED_COLOR, f"tactics were {', '.join(m.old_tactics) or 'none'}")
    for v in diff.revoked:
        add(v, RETIRED_COLOR, "revoked" + (f": use {v.replaced_by}" if v.replaced_by else ""))
    for c in diff.deprecated:
        add(c, RETIRED_COLOR, "deprecated")
    for c in diff.removed:
        add(c, RETIRED_COLOR, f"not in {diff.new_version}")
    techniques = [
        {
            "technique_id": e["technique_id"],
            "tactics": e["tactics"],
            "color": e["color"],
            "comment": "; ".join(e["notes"]),  # type: ignore[arg-type]
        }
        for e in entries.values()
    ]
    version = diff.new_version if diff.new_version and diff.new_version[0].isdigit() else None
    return build_layer(
        techniques,
        name=f"ATT&CK {diff.old_version or '?'} -> {diff.new_version or '?'} ({diff.domain})",
        attack_version=version,
        domain=diff.domain,
        description=", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in diff.summary.items()),
        legend=[
            ("added", ADDED_COLOR),
            ("renamed or moved", CHANGED_COLOR),
            ("revoked, deprecated or removed", RETIRED_COLOR),
        ],
    )


COVERED_COLOR = "#8ec843"
PARTIAL_COLOR = "#ffe766"
GAP_COLOR = "#ff6666"


def model_change_layer(change: ThreatModelChange) -> dict[str, object]:
    """A threat model in the new release as a Navigator layer: its techniques coloured by
    coverage (covered green, partial yellow, gap red); the techniques whose status or actors
    changed score 1 (the others 0) and say why in their comment, so that the Navigator's score
    filter shows only what the release changed."""
    from .layers import build_layer

    why = {c.technique_id: c for c in change.techniques}
    colors = {"covered": COVERED_COLOR, "partial": PARTIAL_COLOR, "gap": GAP_COLOR}
    rows = []
    for tid, tactics, status in change._new:
        c = why.get(tid)
        text = status if c is None else f"{c.old or 'not in the model'} -> {status}: {c.note}"
        rows.append(
            {
                "technique_id": tid,
                "tactics": tactics,
                "color": colors[status] if change.inventory else None,
                "score": 1 if c is not None else 0,
                "comment": text,
            }
        )
    version = change.new.version if change.new else None
    return build_layer(
        rows,
        name=f"{change.name}: threat model in ATT&CK {version or 'the new release'}",
        attack_version=version if version and version[0].isdigit() else None,
        domain=change._domain,
        description=model_headline(change),
        gradient={"colors": ["#ffffff", "#66b1ff"], "minValue": 0, "maxValue": 1},
        legend=[
            ("covered", COVERED_COLOR),
            ("partially covered", PARTIAL_COLOR),
            ("gap", GAP_COLOR),
        ]
        if change.inventory
        else [],  # fmt: skip
    )


def _md_table(headers: list[str], rows: list[list[object]]) -> list[str]:
    def cell(v: object) -> str:
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        return str("" if v is None else v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return out + [""]


def diff_markdown(diff: ReleaseDiff) -> str:
    """The diff as Markdown: a summary, then one table per kind of change."""
    lines = [
        f"# ATT&CK {diff.domain}: {diff.old_version or '?'} -> {diff.new_version or '?'}",
        "",
        f"Old: {diff.old_source}  ",
        f"New: {diff.new_source}",
        "",
    ]
    lines += _md_table(
        ["change", "count"], [[k.replace("_", " "), v] for k, v in diff.summary.items()]
    )
    sections: list[tuple[str, list[str], list[list[object]]]] = [
        ("Techniques added", ["id", "name", "tactics"],
         [[c.technique_id, c.name, c.tactics] for c in diff.added]),
        ("Techniques removed", ["id", "name", "tactics"],
         [[c.technique_id, c.name, c.tactics] for c in diff.removed]),
        ("Techniques revoked", ["id", "name", "replaced by"],
         [[c.technique_id, c.name, f"{c.replaced_by or ''} {c.replaced_by_name or ''}".strip()]
          for c in diff.revoked]),
        ("Techniques deprecated", ["id", "name"],
         [[c.technique_id, c.name] for c in diff.deprecated]),
        ("Techniques renamed", ["id", "old name", "new name"],
         [[c.technique_id, c.old_name, c.name] for c in diff.renamed]),
        ("Techniques moved between tactics", ["id", "name", "old tactics", "new tactics"],
         [[c.technique_id, c.name, c.old_tactics, c.tactics] for c in diff.moved]),
        ("Groups whose techniques changed", ["id", "name", "status", "before", "after", "gained",
                                             "lost"],
         [[g.group_id, g.name, g.status, g.old_count, g.new_count, g.gained, g.lost]
          for g in diff.groups]),
    ]  # fmt: skip
    for title, headers, rows in sections:
        if rows:
            lines += [f"## {title} ({len(rows)})", ""] + _md_table(headers, rows)
    d = diff.detection
    lines += ["## Detection model", "", d.note, ""]
    lines += _md_table(
        ["", "model", "component DETECTS", "strategies", "analytics", "log sources",
         "techniques (components)", "techniques (strategies)"],
        [[name, s.model, s.component_detects, s.strategies, s.analytics, s.log_sources,
          s.component_techniques, s.strategy_techniques]
         for name, s in (("old", d.old), ("new", d.new))],
    )  # fmt: skip
    if d.components:
        lines += [f"### Data components ({len(d.components)} changed)", ""]
        lines += _md_table(
            ["id", "name", "old", "new", "how (old -> new)", "kept", "gained", "lost"],
            [[c.data_component_id, c.name, c.old_techniques, c.new_techniques,
              f"{c.old_model} -> {c.new_model}", c.kept, len(c.gained), len(c.lost)]
             for c in d.components],
        )  # fmt: skip
    if diff.impact is not None:
        lines += ["## Impact on inventories", ""]
        for inv in diff.impact:
            lines += [
                f"### {inv.inventory}: {inv.affected_rules} of {inv.rules} rules affected",
                "",
            ]
            if inv.items:
                lines += _md_table(
                    ["rule", "technique", "problem", "retag to", "note"],
                    [[i.rule_name or i.rule_id, i.technique_id, i.problem, i.replacement, i.note]
                     for i in inv.items],
                )  # fmt: skip
    if diff.threat_models:
        lines += ["## Threat models", ""]
        for m in diff.threat_models:
            lines += [f"### {m.name}", "", model_headline(m), ""]
            if m.tactics:
                lines += _md_table(
                    ["tactic", "old covered", "new covered"],
                    [[t.tactic, f"{t.old_covered}/{t.old_total}", f"{t.new_covered}/{t.new_total}"]
                     for t in m.tactics],
                )  # fmt: skip
            if m.techniques:
                lines += _md_table(
                    ["technique", "name", "old", "new", "why"],
                    [[c.technique_id, c.name, c.old or "not in model", c.new or "not in model",
                      c.note] for c in m.techniques],
                )  # fmt: skip
            lines += [f"- {n}" for n in m.notes] + ([""] if m.notes else [])
    for note in diff.notes:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def model_headline(m: ThreatModelChange) -> str:
    """One line: the model's actors and inventory, and its coverage before and after."""
    who = ", ".join(m.actors)
    if m.old is None or m.new is None:
        return f"{who}: no inventory; {len(m.techniques)} technique(s) enter, leave or change"
    return (
        f"{who} against {m.inventory}: {m.old.covered}/{m.old.techniques} covered "
        f"({m.old.coverage_pct:g}%) in {m.old.version or 'old'} -> {m.new.covered}/"
        f"{m.new.techniques} ({m.new.coverage_pct:g}%) in {m.new.version or 'new'} "
        f"({m.change_pct:+g} points)"
    )
