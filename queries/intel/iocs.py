"""What an IOC tells: the indicators and observables holding it and, as graph paths, what they
are linked to."""

from __future__ import annotations

from collections import defaultdict

from ..cache import cached_answer
from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph
from .common import read_quietly
from .models import IocAnswer, IocMatch, IocPath, LinkedObject, PathNode, PathRelationship

_BUCKETS = {
    "Technique": "techniques",
    "Software": "software",
    "OrgSoftware": "software",
    "Campaign": "campaigns",
    "OrgCampaign": "campaigns",
    "Group": "actors",
    "OrgCluster": "actors",
    "Report": "reports",
    "Incident": "reports",
    "Sighting": "sightings",
}


@cached_answer
def ioc_lookup(graph: Graph, *, value: str, limit: int = 500) -> IocAnswer:
    """What an IOC tells: the indicators/observables holding it and, as graph paths, the
    techniques, software, campaigns, groups/clusters, reports and sightings linked to them."""
    value = (value or "").strip()
    if not value:
        raise InvalidInput("IOC value is empty")
    if len(value) > 2048:
        raise InvalidInput("IOC value longer than 2048 characters")
    row = read_quietly(graph, Q.intel_ioc_lookup, value=value, limit=limit)[0]
    matches = [IocMatch(**m) for m in row["matches"]]
    if not matches:
        raise NotFound(f"no indicator or observable of the organisation holds {value!r}")
    tactics: dict[str, list[str]] = {}
    paths = []
    for r in row["paths"]:
        for n in r["nodes"]:
            if n.get("tactics") is not None:
                tactics[n["id"]] = n["tactics"]
        paths.append(
            IocPath(
                nodes=[PathNode(**n) for n in r["nodes"]],
                relationships=[PathRelationship(**x) for x in r["relationships"]],
            )
        )
    linked: dict[str, dict[tuple[str, str], LinkedObject]] = defaultdict(dict)
    for p in paths:
        for i, node in enumerate(p.nodes[1:], 1):
            bucket = _BUCKETS.get(node.label or "")
            if bucket is None:
                continue
            key = (node.label or "", node.id)
            prev = linked[bucket].get(key)
            if prev is None or i < prev.hops:
                sub = IocPath(nodes=p.nodes[: i + 1], relationships=p.relationships[:i])
                linked[bucket][key] = LinkedObject(
                    label=node.label or "",
                    id=node.id,
                    name=node.name,
                    source=node.source,
                    hops=i,
                    via=sub.text(),
                )
    techniques = sorted(linked["techniques"].values(), key=lambda x: (x.hops, x.id))
    for t in techniques:
        t.tactics = tactics.get(t.id) or []

    def listed(bucket: str) -> list[LinkedObject]:
        return sorted(linked[bucket].values(), key=lambda x: (x.hops, x.label, x.id))

    return IocAnswer(
        value=value,
        matches=matches,
        techniques=techniques,
        software=listed("software"),
        campaigns=listed("campaigns"),
        actors=listed("actors"),
        reports=listed("reports"),
        sightings=listed("sightings"),
        paths=paths,
    )
