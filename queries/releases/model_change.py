"""How a threat model's coverage changes from one release to another: each side computed from
that release alone, the way a gap analysis computes it on a loaded release."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

from ..actors import path_kinds
from ..catalog import Q
from ..graph import Graph
from ..technique_index import Crosswalk, CrosswalkEntry, TechniqueIndex
from ..threat_models import ThreatModel
from .impact import TaggedRule, inventory_rules
from .snapshots import GroupState, ReleaseSnapshot, TechniqueState

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


class ReleaseIndex:
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


def judge_model(
    rel: ReleaseIndex,
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
    o_rel, n_rel = ReleaseIndex(old), ReleaseIndex(new)
    o_status, o_users, o_direct, o_notes = judge_model(o_rel, model, mine, opts, org)
    n_status, n_users, n_direct, n_notes = judge_model(n_rel, model, mine, opts, org)
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
    from ..threat_models import list_threat_models

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
