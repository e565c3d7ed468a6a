"""Release snapshots from bundles, and the diff between the loaded release and a bundle (or two
bundles), with the impact on the organisation's inventories.

A bundle is validated exactly as a load validates it (``loader.stix.to_rows``) before it is
compared, so a diff refuses the same bad input a load refuses, with the same one-line error.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from queries.errors import Unavailable
from queries.graph import Graph
from queries.releases import (
    ComponentDetection,
    DetectionSummary,
    GroupState,
    ReleaseDiff,
    ReleaseSnapshot,
    TacticState,
    TechniqueState,
    detection_model,
    diff_snapshots,
    inventory_rules,
    normalize_domain,
    rule_impact,
    snapshot_from_graph,
    technique_domains,
    threat_model_changes,
)
from queries.threat_models import ThreatModel

from . import sources
from .stix import KILL_CHAIN_DOMAIN, BundleError, attack_id, detect_domain, detect_release, to_rows


def _current(obj: dict[str, Any]) -> bool:
    return not obj.get("revoked") and not obj.get("x_mitre_deprecated")


def snapshot_from_objects(
    objects: list[dict[str, Any]], *, domain: str, version: str | None, source: str
) -> ReleaseSnapshot:
    """A release snapshot straight from a validated bundle's objects (no database)."""
    by_id = {o["id"]: o for o in objects if o.get("type") != "relationship"}
    rels = [o for o in objects if o.get("type") == "relationship"]
    revoked_by: dict[str, str] = {}
    out_rels: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rels:
        if r.get("relationship_type") == "revoked-by":
            revoked_by[r["source_ref"]] = r["target_ref"]
        out_rels[(r["source_ref"], r.get("relationship_type", ""))].append(r)

    def aid(i: str) -> str | None:
        return attack_id(by_id[i]) if i in by_id else None

    def current_targets(src: str, rtype: str, prefix: str) -> set[str]:
        return {
            r["target_ref"]
            for r in out_rels.get((src, rtype), [])
            if _current(r)
            and r["target_ref"].startswith(prefix)
            and r["target_ref"] in by_id
            and _current(by_id[r["target_ref"]])
        }

    techniques = []
    for o in objects:
        if o.get("type") != "attack-pattern":
            continue
        replaced = None
        hop = o["id"]
        for _ in range(5):  # follow revoked-by to the final, not revoked, replacement
            hop = revoked_by.get(hop, "")
            if not hop.startswith("attack-pattern--") or hop not in by_id:
                break
            if not by_id[hop].get("revoked"):
                replaced = by_id[hop]
                break
        phases = [
            p["phase_name"]
            for p in o.get("kill_chain_phases", [])
            if isinstance(p, dict) and p.get("kill_chain_name") in KILL_CHAIN_DOMAIN
        ]
        techniques.append(
            TechniqueState(
                stix_id=o["id"],
                attack_id=attack_id(o),
                name=o["name"],
                tactics=sorted(set(phases)),
                platforms=list(o.get("x_mitre_platforms") or []),
                is_subtechnique=bool(o.get("x_mitre_is_subtechnique", False)),
                revoked=bool(o.get("revoked", False)),
                deprecated=bool(o.get("x_mitre_deprecated", False)),
                replaced_by=attack_id(replaced) if replaced else None,
                replaced_by_name=replaced["name"] if replaced else None,
            )
        )

    def technique_ids(src: str) -> set[str]:
        return set(filter(None, (aid(t) for t in current_targets(src, "uses", "attack-pattern--"))))

    campaigns_of: dict[str, set[str]] = defaultdict(set)  # group -> current campaigns
    for r in rels:
        if (
            r.get("relationship_type") == "attributed-to"
            and _current(r)
            and r["source_ref"].startswith("campaign--")
            and r["source_ref"] in by_id
            and _current(by_id[r["source_ref"]])
        ):
            campaigns_of[r["target_ref"]].add(r["source_ref"])
    groups = []
    for o in objects:
        if o.get("type") != "intrusion-set":
            continue
        # the group's own software and its campaigns' (the path kinds of actor_techniques)
        software: set[str] = set()
        for src in {o["id"], *campaigns_of.get(o["id"], ())}:
            software |= current_targets(src, "uses", "malware--")
            software |= current_targets(src, "uses", "tool--")
        groups.append(
            GroupState(
                stix_id=o["id"],
                attack_id=attack_id(o),
                name=o["name"],
                revoked=bool(o.get("revoked", False)),
                deprecated=bool(o.get("x_mitre_deprecated", False)),
                techniques=sorted(technique_ids(o["id"])),
                campaign_techniques=sorted(
                    set().union(*(technique_ids(c) for c in campaigns_of.get(o["id"], ())))
                ),
                software_techniques=sorted(set().union(*(technique_ids(s) for s in software))),
            )
        )

    # v18: detection strategy -> analytics -> log sources (each names its data component).
    strategy_techniques: dict[str, set[str]] = {}
    strategy_current: set[str] = set()
    analytic_strategies: dict[str, set[str]] = defaultdict(set)
    for o in objects:
        if o.get("type") == "x-mitre-detection-strategy":
            strategy_techniques[o["id"]] = current_targets(o["id"], "detects", "attack-pattern--")
            if _current(o):
                strategy_current.add(o["id"])
                for a in o.get("x_mitre_analytic_refs", []):
                    analytic_strategies[a].add(o["id"])
    component_via: dict[str, set[str]] = defaultdict(set)
    analytics = 0
    log_sources: set[tuple[str, str, str]] = set()
    for o in objects:
        if o.get("type") != "x-mitre-analytic" or not _current(o):
            continue
        analytics += 1
        reached = set().union(*(strategy_techniques[s] for s in analytic_strategies[o["id"]]))
        for ref in o.get("x_mitre_log_source_references", []):
            dc = ref["x_mitre_data_component_ref"]
            log_sources.add((dc, ref["name"], ref.get("channel", "")))
            component_via[dc] |= reached

    components = []
    component_detects = 0
    component_techs: set[str] = set()
    for o in objects:
        if o.get("type") != "x-mitre-data-component":
            continue
        direct = current_targets(o["id"], "detects", "attack-pattern--")
        component_detects += len(direct)
        component_techs |= direct
        components.append(
            ComponentDetection(
                stix_id=o["id"],
                attack_id=attack_id(o),
                name=o["name"],
                retired=not _current(o),
                direct=sorted(filter(None, (aid(t) for t in direct))),
                via=sorted(filter(None, (aid(t) for t in component_via.get(o["id"], ())))),
            )
        )
    detected_by_strategies = set().union(
        *(t for s, t in strategy_techniques.items() if s in strategy_current)
    )
    detection = DetectionSummary(
        model=detection_model(component_detects, len(strategy_current)),  # type: ignore[arg-type]
        component_detects=component_detects,
        component_techniques=len(component_techs),
        strategies=len(strategy_current),
        strategy_techniques=len(detected_by_strategies),
        analytics=analytics,
        log_sources=len(log_sources),
    )
    tactics = [
        TacticState(
            stix_id=o["id"],
            attack_id=attack_id(o),
            name=o["name"],
            shortname=o.get("x_mitre_shortname", ""),
            revoked=bool(o.get("revoked", False)),
            deprecated=bool(o.get("x_mitre_deprecated", False)),
        )
        for o in objects
        if o.get("type") == "x-mitre-tactic"
    ]
    return ReleaseSnapshot(
        domain=domain,
        version=version,
        source=source,
        techniques=sorted(techniques, key=lambda t: t.stix_id),
        groups=sorted(groups, key=lambda g: g.stix_id),
        components=sorted(components, key=lambda c: c.stix_id),
        detection=detection,
        tactics=sorted(tactics, key=lambda t: t.stix_id),
    )


def snapshot_from_fetched(
    fetched: sources.FetchedBundle, *, domain: str | None = None, release: str | None = None
) -> ReleaseSnapshot:
    """Validate a fetched bundle as a load would, then snapshot it."""
    found = detect_domain(fetched.objects)
    if found is None:
        raise BundleError(f"{fetched.source}: not an ATT&CK bundle (no matrix, no techniques)")
    if domain is not None and normalize_domain(domain) != found:
        raise BundleError(f"{fetched.source}: holds {found}, not {normalize_domain(domain)}")
    version = release or detect_release(fetched.objects, fetched.name_hint)
    try:
        rows = to_rows(
            fetched.objects, domain=found, spec_version=fetched.spec_version, release=version
        )
    except BundleError as exc:
        raise BundleError(f"{fetched.source}: {exc}") from None
    snap = snapshot_from_objects(
        fetched.objects, domain=found, version=version, source=fetched.source
    )
    snap.warnings = list(rows.warnings)
    return snap


def snapshot_from_source(
    source: str, *, domain: str | None = None, release: str | None = None
) -> ReleaseSnapshot:
    """A snapshot of a bundle file (.json/.json.gz) or an http(s) URL."""
    if source.startswith(("https://", "http://")):
        fetched = sources.from_url(source)
    else:
        fetched = sources.from_file(source)
    return snapshot_from_fetched(fetched, domain=domain, release=release)


def diff_releases(
    graph: Graph | None,
    *,
    new: str,
    old: str | None = None,
    domain: str | None = None,
    old_release: str | None = None,
    new_release: str | None = None,
    impact: bool = True,
    threat_models: bool = True,
    models: list[ThreatModel] | None = None,
) -> ReleaseDiff:
    """Diff ``old`` (a bundle file or URL; None: the release loaded in the graph) with ``new``.

    With a graph, each inventory's rules are judged against the new release (``impact``); when
    two bundles are compared and Neo4j cannot be reached, the diff comes without the impact and
    says so in ``notes``.
    """
    new_snap = snapshot_from_source(new, domain=domain, release=new_release)
    old_snap = None
    if old is not None:
        old_snap = snapshot_from_source(old, domain=domain, release=old_release)
        if old_snap.domain != new_snap.domain:
            raise BundleError(
                f"cannot compare {old_snap.source} ({old_snap.domain}) with "
                f"{new_snap.source} ({new_snap.domain}): not the same domain"
            )
    return diff_with(
        graph, new_snap, old_snap, impact=impact, threat_models=threat_models, models=models
    )


def diff_with(
    graph: Graph | None,
    new_snap: ReleaseSnapshot,
    old_snap: ReleaseSnapshot | None = None,
    *,
    impact: bool = True,
    threat_models: bool = True,
    models: list[ThreatModel] | None = None,
) -> ReleaseDiff:
    """Diff two snapshots (``old_snap`` None: the loaded release), with the inventories' impact
    and how each threat model's coverage changes (``models`` None: every saved one)."""
    if old_snap is None:
        if graph is None:
            raise BundleError("no OLD bundle given and no graph to read the loaded release from")
        old_snap = snapshot_from_graph(graph, domain=new_snap.domain)
        from_graph = True
    else:
        from_graph = False
    result = diff_snapshots(old_snap, new_snap)
    for snap in (old_snap, new_snap):
        result.notes += [f"{snap.source}: {w}" for w in snap.warnings]
    if impact and graph is not None:
        try:
            rules = inventory_rules(graph)
            ids = {t for r in rules for t in r.tagged}
            result.impact = rule_impact(
                rules,
                new_snap,
                other_domains=technique_domains(graph, ids),
                also_domain={t.attack_id for t in old_snap.techniques if t.attack_id},
            )
            if not rules:
                result.notes.append("no inventories in the graph: no rule to judge")
        except Unavailable as exc:
            if from_graph:
                raise
            result.notes.append(f"impact on inventories not computed: {exc.detail}")
    elif impact:
        result.notes.append("impact on inventories not computed: no graph")
    if not threat_models:
        return result
    if graph is None:
        result.notes.append("threat models not compared: no graph")
        return result
    try:
        result.threat_models = threat_model_changes(
            graph, old_snap, new_snap, models=models, notes=result.notes
        )
        if not result.threat_models and not any(
            n.startswith("threat model ") for n in result.notes
        ):
            result.notes.append(
                "no saved threat model: save one (ttpgraph threat-model save) to see how its "
                "coverage changes"
            )
    except Unavailable as exc:
        if from_graph:
            raise
        result.notes.append(f"threat models not compared: {exc.detail}")
    return result
