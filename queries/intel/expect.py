"""What to expect next from an actor: its techniques not observed yet, in matrix order, with
whether the organisation's detection inventories cover them."""

from __future__ import annotations

from collections import defaultdict

from ..actors import check_domain, group_technique_sets, technique_details
from ..cache import cached_answer
from ..catalog import Q
from ..errors import NotFound
from ..graph import Graph
from .common import cluster_technique_sets, read_quietly, technique_name
from .models import Expectation, ExpectedTechnique, TacticBucket
from .resolution import observed_techniques, resolve_actor


def _inventories(graph: Graph, wanted: list[str] | None) -> list[str]:
    known = [r["name"] for r in read_quietly(graph, Q.inventory_list, limit=10_000)]
    if not wanted:
        return known
    missing = [w for w in wanted if w not in known]
    if missing:
        raise NotFound(f"no detection inventory named {missing[0]!r}", suggestions=known[:10])
    return list(dict.fromkeys(wanted))


@cached_answer
def expect_next(
    graph: Graph,
    *,
    actor: str,
    techniques: list[str] | None = None,
    incident: str | None = None,
    include_software: bool = False,
    domain: str | None = None,
    inventories: list[str] | None = None,
    limit: int = 1000,
) -> Expectation:
    """For an actor (ATT&CK group or the organisation's cluster), its techniques not observed
    yet, in matrix order (tactics read from the graph), each flagged with whether the imported
    detection inventories cover it."""
    resolved, kind = resolve_actor(graph, actor)
    observed: list[str] = []
    notes: list[str] = []
    if techniques or incident:
        observed, _, notes = observed_techniques(graph, techniques, incident)
    dom = check_domain(domain) if domain else None
    if kind == "attack-group":
        sets = group_technique_sets(
            graph, [resolved.attack_id], include_software=include_software, domain=dom
        )
        techs = sets.get(resolved.attack_id, (resolved.name, {}))[1]
    else:
        csets = cluster_technique_sets(
            graph, [resolved.attack_id], include_software=include_software, domain=dom
        )
        techs = csets.get(resolved.attack_id, (resolved.name, {}, []))[1]
    seen = set(observed)
    remaining = [t for t in techs if t not in seen]
    details = technique_details(graph, remaining)
    invs = _inventories(graph, inventories)
    cover: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for inv in invs:
        for r in read_quietly(
            graph, Q.coverage_rules_for_techniques, inventory=inv, technique_ids=remaining
        ):
            cover[r["technique_id"]][0].extend(f"{inv}: {n}" for n in r["rules"])
            cover[r["technique_id"]][1].extend(f"{inv}: {n}" for n in r["partial_rules"])
    expected = []
    for t in remaining:
        d = details.get(t)
        if d is None:  # retired since (the sets exclude them; belt and braces)
            continue
        orders = [o for o in d.get("tactic_orders") or [] if o is not None]
        full, part = cover.get(t, ([], []))
        expected.append(
            ExpectedTechnique(
                technique_id=t,
                name=technique_name(details, t),
                tactics=d.get("tactics") or [],
                tactic_names=d.get("tactic_names") or [],
                tactic_order=min(orders) if orders else None,
                kinds=techs[t],
                detectable=(bool(full) or bool(part)) if invs else None,
                partial=bool(part) and not full,
                rules=full + part,
            )
        )
    expected.sort(key=lambda e: (e.tactic_order if e.tactic_order is not None else 999,
                                 e.technique_id))  # fmt: skip
    expected = expected[:limit]
    buckets: dict[str, TacticBucket] = {}
    for e in expected:
        d = details[e.technique_id]
        for short, name, order in zip(
            d.get("tactics") or [],
            d.get("tactic_names") or [],
            d.get("tactic_orders") or [],
            strict=False,
        ):
            b = buckets.setdefault(
                short,
                TacticBucket(tactic=short, name=name, order=order, techniques=[], detectable=0,
                             undetected=0),
            )  # fmt: skip
            b.techniques.append(e.technique_id)
            if e.detectable:
                b.detectable += 1
            elif e.detectable is False:
                b.undetected += 1
    if invs:
        detection = (
            f"covered by a rule of {', '.join(invs)} (partial: only through a parent or "
            "sub-technique rule)"
        )
    else:
        detection = "no detection inventory imported: detectable is unknown (null)"
    return Expectation(
        actor_id=resolved.attack_id,
        name=resolved.name,
        kind=kind,
        resolved_note="; ".join([n for n in [resolved.note, *notes] if n]) or None,
        observed=sorted(seen),
        observed_used=sorted(seen & set(techs)),
        include_software=include_software,
        domain=dom,
        inventories=invs,
        detection=detection,
        expected=expected,
        by_tactic=sorted(
            buckets.values(), key=lambda b: (b.order if b.order is not None else 999, b.tactic)
        ),  # fmt: skip
    )
