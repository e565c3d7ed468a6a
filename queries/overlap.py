"""Actor overlap as a network: who resembles whom, for visual link analysis.

Groups are nodes (sized by how many techniques they use); two groups are joined when their
technique sets overlap at least ``threshold`` — Jaccard (|A ∩ B| / |A ∪ B|) or the number of
techniques they share. Technique sets come from :func:`queries.actors.group_technique_sets`
(direct USES and campaigns attributed to the group; optionally the software the group or its
campaigns use), so this network and ``ttpgraph compare``/``similar`` always agree on who uses what.

On that network: communities (Louvain, seeded, so the same graph gives the same communities),
centrality (degree, strength = summed edge weight, betweenness over distance = 1 / weight), and
for one actor its neighbourhood. Exports: GEXF and GraphML (Gephi, Cytoscape desktop),
Cytoscape.js JSON, and a static PNG/SVG drawing (matplotlib, an optional extra).

Only groups with at least one edge at the threshold are nodes (an actor asked for is kept even
when it has none), so "how many nodes" answers "how many groups resemble another group this
much".
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .actors import check_domain, group_technique_sets
from .cache import cached_answer
from .errors import InvalidInput, TtpgraphError
from .graph import Graph
from .kinds import DEFAULT_SEED, DEFAULT_THRESHOLDS, Metric
from .lazy import lazy_module
from .resolve import resolve_group

if TYPE_CHECKING:
    import networkx as nx
else:
    nx = lazy_module("networkx")  # imported when a network is built, not with the module

BETWEENNESS_EXACT = 1_000_000
"""Betweenness is exact while its cost -- one weighted shortest-path search per node over its
connected component: the sum of nodes x (nodes + edges) over the components -- stays under
this (ATT&CK's groups: about 200,000 at the default threshold, 800,000 at 0.1)."""
BETWEENNESS_SAMPLED = 150_000
"""Above :data:`BETWEENNESS_EXACT` it is estimated from as many seeded sample sources as this
cost allows (at least 8): Brandes' algorithm in Python costs about a microsecond a unit."""
MAX_DEPTH = 3
# Colours for communities (Okabe-Ito, then Tableau 10): readable on white, colour-blind safe first.
PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#4E79A7", "#F28E2B", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F",
)  # fmt: skip
NO_COMMUNITY_COLOR = "#BAB0AC"


class ExportFormat(StrEnum):
    gexf = "gexf"
    graphml = "graphml"
    cyjs = "cyjs"
    png = "png"
    svg = "svg"


MEDIA_TYPES = {
    ExportFormat.gexf: "application/gexf+xml",
    ExportFormat.graphml: "application/graphml+xml",
    ExportFormat.cyjs: "application/json",
    ExportFormat.png: "image/png",
    ExportFormat.svg: "image/svg+xml",
}
SUFFIXES = {
    ".gexf": ExportFormat.gexf,
    ".graphml": ExportFormat.graphml,
    ".json": ExportFormat.cyjs,
    ".cyjs": ExportFormat.cyjs,
    ".png": ExportFormat.png,
    ".svg": ExportFormat.svg,
}


class PlotUnavailable(TtpgraphError):
    """matplotlib is not installed, so the network cannot be drawn as PNG or SVG."""

    status = 501
    title = "Rendering unavailable"


# ---------------------------------------------------------------- models


class OverlapNode(BaseModel):
    group_id: str
    name: str
    technique_count: int = Field(description="techniques the group uses (node size)")
    community: int | None = Field(
        description="Louvain community, 0 = largest; null for an actor with no edge"
    )
    color: str = Field(description="the community's colour (#RRGGBB)")
    degree: int = Field(description="neighbours at this threshold")
    strength: float = Field(description="sum of the weights of its edges")
    betweenness: float = Field(
        description="normalised betweenness, distance = 1 / weight (estimated on large "
        "networks: see the network's betweenness_sources)"
    )


class OverlapEdge(BaseModel):
    source: str
    target: str
    weight: float = Field(description="the metric's value: Jaccard or shared-technique count")
    jaccard: float
    shared: int
    shared_techniques: list[str]


class Community(BaseModel):
    community: int
    color: str
    size: int
    groups: list[str]
    top_techniques: list[str] = Field(description="techniques most of its members use, top 10")


class OverlapNetwork(BaseModel):
    metric: Metric
    threshold: float = Field(description="an edge needs a weight at least this")
    include_software: bool
    domain: str | None
    seed: int = Field(description="Louvain seed")
    actor: str | None = Field(None, description="the actor whose neighbourhood this is")
    depth: int | None = Field(None, description="hops from the actor")
    groups_considered: int = Field(description="groups with at least one technique")
    node_count: int
    edge_count: int
    modularity: float = Field(description="of the communities on the whole network")
    betweenness_sources: int | None = Field(
        None,
        description="betweenness estimated from this many sampled sources (seeded); null: exact",
    )
    nodes: list[OverlapNode]
    edges: list[OverlapEdge]
    communities: list[Community]


# ---------------------------------------------------------------- building (pure)


def check_threshold(metric: Metric, threshold: float | None) -> float:
    """The threshold to use: the metric's default, or the one given if it makes sense."""
    if threshold is None:
        return DEFAULT_THRESHOLDS[metric.value]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise InvalidInput(f"threshold {threshold!r}: must be a number")
    if math.isnan(threshold):
        raise InvalidInput("threshold: must be a number, not NaN")
    if metric == Metric.jaccard and not 0 < threshold <= 1:
        raise InvalidInput(f"threshold {threshold}: a Jaccard threshold is in (0, 1]")
    if metric == Metric.shared and (threshold < 1 or threshold != int(threshold)):
        raise InvalidInput(
            f"threshold {threshold}: a shared-technique threshold is a whole number >= 1"
        )
    return float(threshold)


def overlap_pairs(
    sets: dict[str, tuple[str, set[str]]], *, metric: Metric, threshold: float
) -> list[tuple[str, str, int, int]]:
    """Every pair of groups whose overlap is at least ``threshold``: ``(a, b, shared, union)``
    with ``a < b``, in the order of ``itertools.combinations`` over the sorted ids.

    Vectorised set arithmetic: the actor x technique incidence is kept as postings (for each
    technique, the actors using it); for each actor, the actors after it that share a
    technique and how many are counted in one ``numpy.bincount`` over its techniques'
    postings -- a sparse product of the incidence with its transpose, row by row, so the cost
    follows the pairs that share something, not all n^2/2 pairs. Weights are computed in
    float64 as ``shared / union`` (the same values, and the same edges, as Python's sets).
    """
    import numpy as np

    ids = sorted(g for g, (_, techs) in sets.items() if techs)
    if len(ids) < 2:
        return []
    column: dict[str, int] = {}
    rows = [
        np.fromiter((column.setdefault(t, len(column)) for t in sets[g][1]), dtype=np.int64)
        for g in ids
    ]
    size = np.array([len(r) for r in rows], dtype=np.int64)
    cols = np.concatenate(rows)
    owners = np.repeat(np.arange(len(ids), dtype=np.int64), size)
    order = np.argsort(cols, kind="stable")
    posting = owners[order]  # actors by technique, ascending within each technique
    bounds = np.searchsorted(cols[order], np.arange(len(column) + 1))
    out: list[tuple[str, str, int, int]] = []
    n = len(ids)
    for i in range(n - 1):
        parts = [posting[bounds[c] : bounds[c + 1]] for c in rows[i]]
        cand = np.concatenate(parts)
        cand = cand[cand > i]
        if not cand.size:
            continue
        counts = np.bincount(cand - (i + 1), minlength=n - i - 1)
        js = np.flatnonzero(counts)
        shared = counts[js]
        union = size[i] + size[js + i + 1] - shared
        if metric == Metric.shared:
            keep = shared.astype(np.float64) >= threshold
        else:
            keep = shared / union >= threshold
        for j, k, u in zip(
            (js[keep] + i + 1).tolist(), shared[keep].tolist(), union[keep].tolist(), strict=True
        ):
            out.append((ids[i], ids[j], k, u))
    return out


def similarity_graph(
    sets: dict[str, tuple[str, set[str]]], *, metric: Metric, threshold: float
) -> nx.Graph:
    """Groups joined when their overlap is at least ``threshold``; groups with no edge left out.

    ``sets``: group id -> (name, technique ids). Nodes and edges are added in sorted order so
    that seeded algorithms give the same answer every time.
    """
    edges: list[tuple[str, str, dict[str, Any]]] = []
    for a, b, shared, union in overlap_pairs(sets, metric=metric, threshold=threshold):
        w = float(shared) if metric == Metric.shared else shared / union
        edges.append(
            (
                a,
                b,
                {
                    "weight": w,
                    "distance": 1.0 / w,
                    "jaccard": shared / union,
                    "shared": shared,
                    "shared_techniques": sorted(sets[a][1] & sets[b][1]),
                },
            )
        )
    g = nx.Graph()
    for gid in sorted({x for a, b, _ in edges for x in (a, b)}):
        g.add_node(gid, name=sets[gid][0], technique_count=len(sets[gid][1]))
    g.add_edges_from(edges)
    return g


def communities(g: nx.Graph, *, seed: int) -> list[list[str]]:
    """Louvain communities (networkx), largest first, members sorted: stable numbering."""
    if g.number_of_nodes() == 0:
        return []
    found = nx.community.louvain_communities(g, weight="weight", seed=seed)
    return sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))


def betweenness_sources(g: nx.Graph) -> int | None:
    """None (exact) for a network within :data:`BETWEENNESS_EXACT`, else the number of
    sample sources :data:`BETWEENNESS_SAMPLED` affords."""
    cost = 0
    for part in nx.connected_components(g):
        n = len(part)
        cost += n * (n + g.subgraph(part).number_of_edges())
    if cost <= BETWEENNESS_EXACT:
        return None
    n = g.number_of_nodes()
    per_source = max(1, cost // max(n, 1))
    return max(8, min(n, BETWEENNESS_SAMPLED // per_source))


def _color(community: int | None) -> str:
    return NO_COMMUNITY_COLOR if community is None else PALETTE[community % len(PALETTE)]


def build_network(
    sets: dict[str, tuple[str, set[str]]],
    *,
    metric: Metric = Metric.jaccard,
    threshold: float | None = None,
    include_software: bool = False,
    domain: str | None = None,
    actor: str | None = None,
    depth: int = 1,
    seed: int = DEFAULT_SEED,
) -> OverlapNetwork:
    """The overlap network from technique sets (no database): what the service returns."""
    threshold = check_threshold(metric, threshold)
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth {depth}: use 1 to {MAX_DEPTH} hops")
    full = similarity_graph(sets, metric=metric, threshold=threshold)
    parts = communities(full, seed=seed)
    member_of = {gid: i for i, part in enumerate(parts) for gid in part}
    modularity = nx.community.modularity(full, parts, weight="weight") if parts else 0.0
    sources = betweenness_sources(full)
    betweenness = nx.betweenness_centrality(
        full, k=sources, weight="distance", normalized=True, seed=seed
    )

    view = full
    if actor is not None:
        if actor in full:
            view = nx.ego_graph(full, actor, radius=depth)
        else:
            view = nx.Graph()
            name, techs = sets.get(actor, (actor, set()))
            view.add_node(actor, name=name, technique_count=len(techs))

    nodes = [
        OverlapNode(
            group_id=gid,
            name=data["name"],
            technique_count=data["technique_count"],
            community=member_of.get(gid),
            color=_color(member_of.get(gid)),
            degree=full.degree(gid) if gid in full else 0,
            strength=round(full.degree(gid, weight="weight"), 4) if gid in full else 0.0,
            betweenness=round(betweenness.get(gid, 0.0), 6),
        )
        for gid, data in sorted(view.nodes(data=True))
    ]
    edges = [
        OverlapEdge(
            source=min(a, b),
            target=max(a, b),
            weight=round(d["weight"], 4),
            jaccard=round(d["jaccard"], 4),
            shared=d["shared"],
            shared_techniques=d["shared_techniques"],
        )
        for a, b, d in view.edges(data=True)
    ]
    edges.sort(key=lambda e: (e.source, e.target))
    in_view = set(view.nodes)
    summaries = []
    for i, part in enumerate(parts):
        if not in_view.intersection(part):
            continue
        counts = Counter(t for gid in part for t in sets[gid][1])
        summaries.append(
            Community(
                community=i,
                color=_color(i),
                size=len(part),
                groups=part,
                top_techniques=[t for t, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))][
                    :10
                ],
            )
        )
    return OverlapNetwork(
        metric=metric,
        threshold=threshold,
        include_software=include_software,
        domain=domain,
        seed=seed,
        actor=actor,
        depth=depth if actor is not None else None,
        groups_considered=sum(1 for _, techs in sets.values() if techs),
        node_count=len(nodes),
        edge_count=len(edges),
        modularity=round(modularity, 6),
        betweenness_sources=sources,
        nodes=nodes,
        edges=edges,
        communities=summaries,
    )


# ---------------------------------------------------------------- the service


@cached_answer
def overlap_network(
    graph: Graph,
    *,
    threshold: float | None = None,
    metric: Metric = Metric.jaccard,
    include_software: bool = False,
    domain: str | None = None,
    actor: str | None = None,
    depth: int = 1,
    seed: int = DEFAULT_SEED,
    include_clusters: bool = False,
) -> OverlapNetwork:
    """The actor-similarity network: groups joined when their technique sets overlap at least
    ``threshold`` (Jaccard in (0, 1], or a shared-technique count), with Louvain communities and
    centrality; with ``actor``, only that actor's neighbourhood (``depth`` hops).
    ``include_clusters``: the organisation's own clusters are actors too (by STIX id)."""
    metric = Metric(metric)
    threshold = check_threshold(metric, threshold)
    dom = check_domain(domain)
    raw = group_technique_sets(graph, [], include_software=include_software, domain=dom)
    sets = {g: (name, set(techs)) for g, (name, techs) in raw.items()}
    gid = None
    if include_clusters:
        from .intel import cluster_technique_sets, resolve_actor

        clusters = cluster_technique_sets(graph, [], include_software=include_software, domain=dom)
        sets.update({c: (name, set(techs)) for c, (name, techs, _) in clusters.items()})
        gid = resolve_actor(graph, actor)[0].attack_id if actor is not None else None
    elif actor is not None:
        gid = resolve_group(graph, actor).attack_id
    return build_network(
        sets,
        metric=metric,
        threshold=threshold,
        include_software=include_software,
        domain=dom,
        actor=gid,
        depth=depth,
        seed=seed,
    )


# ---------------------------------------------------------------- exports


def to_networkx(net: OverlapNetwork, *, flat: bool = True) -> nx.Graph:
    """The network as a networkx graph. ``flat``: only scalar attributes (GEXF and GraphML
    cannot hold lists or nulls), so lists are joined with ", " and a missing community is -1."""
    g = nx.Graph(
        name="ttpgraph actor overlap",
        metric=net.metric.value,
        threshold=net.threshold,
        include_software=net.include_software,
        domain=net.domain or "all",
        seed=net.seed,
        modularity=net.modularity,
    )
    for n in net.nodes:
        attrs: dict[str, Any] = n.model_dump(exclude={"group_id"})
        attrs["label"] = n.name
        if flat and attrs["community"] is None:
            attrs["community"] = -1
        g.add_node(n.group_id, **attrs)
    for e in net.edges:
        attrs = e.model_dump(exclude={"source", "target"})
        if flat:
            attrs["shared_techniques"] = ", ".join(e.shared_techniques)
        g.add_edge(e.source, e.target, **attrs)
    return g


def _hex_rgb(color: str) -> dict[str, int]:
    return {"r": int(color[1:3], 16), "g": int(color[3:5], 16), "b": int(color[5:7], 16), "a": 1}


def export_network(net: OverlapNetwork, fmt: ExportFormat | str) -> bytes:
    """The network as a file: GEXF, GraphML, Cytoscape.js JSON, PNG or SVG."""
    fmt = ExportFormat(fmt)
    if fmt in (ExportFormat.png, ExportFormat.svg):
        return render_network(net, fmt)
    if fmt == ExportFormat.cyjs:
        data = nx.cytoscape_data(to_networkx(net, flat=False))
        return json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8")
    g = to_networkx(net)
    buf = io.BytesIO()
    if fmt == ExportFormat.gexf:
        for _, data in g.nodes(data=True):
            # Gephi reads size and colour from the GEXF viz namespace.
            data["viz"] = {
                "size": float(data["technique_count"]),
                "color": _hex_rgb(data["color"]),
            }
        nx.write_gexf(g, buf, encoding="utf-8", prettyprint=True)
    else:
        nx.write_graphml(g, buf, encoding="utf-8", prettyprint=True)
    return buf.getvalue()


def export_format_for(path: str) -> ExportFormat:
    """The export format a file name asks for (.gexf, .graphml, .json/.cyjs, .png, .svg)."""
    lower = path.lower()
    for suffix, fmt in SUFFIXES.items():
        if lower.endswith(suffix):
            return fmt
    raise InvalidInput(
        f"output {path!r}: use a file ending in {', '.join(SUFFIXES)} to choose the format"
    )


def render_network(
    net: OverlapNetwork, fmt: ExportFormat | str = ExportFormat.png, *, labels: int = 60
) -> bytes:
    """A static drawing for reports (matplotlib, Agg backend): nodes sized by technique count
    and coloured by community, edges by weight; names on the ``labels`` largest nodes."""
    fmt = ExportFormat(fmt)
    if fmt not in (ExportFormat.png, ExportFormat.svg):
        raise InvalidInput(f"format {fmt.value!r}: a drawing is png or svg")
    try:
        # A bare Figure draws with Agg whatever the process's pyplot backend is.
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PlotUnavailable(
            f"PNG/SVG pictures need matplotlib: pip install -e '.[plot]' ({exc})"
        ) from None

    g = to_networkx(net, flat=False)
    fig = Figure(figsize=(14, 10), dpi=110)
    ax = fig.add_subplot()
    ax.set_axis_off()
    title = (
        f"ATT&CK actor overlap: {net.metric.value} >= {net.threshold:g}"
        f"{' (with software)' if net.include_software else ''}"
        f"{f', {net.domain}' if net.domain else ''}"
        f"{f', neighbourhood of {net.actor}' if net.actor else ''}"
        f" — {net.node_count} groups, {net.edge_count} links, "
        f"{len(net.communities)} communities"
    )
    ax.set_title(title, fontsize=11)
    if g.number_of_nodes():
        pos = nx.spring_layout(g, weight="weight", seed=net.seed, k=1.5 / math.sqrt(len(g)))
        top = max((d["weight"] for _, _, d in g.edges(data=True)), default=1.0) or 1.0
        nx.draw_networkx_edges(
            g,
            pos,
            ax=ax,
            width=[0.4 + 2.6 * d["weight"] / top for _, _, d in g.edges(data=True)],
            edge_color="#888888",
            alpha=0.45,
        )
        order = list(g.nodes)
        nx.draw_networkx_nodes(
            g,
            pos,
            ax=ax,
            nodelist=order,
            node_size=[30 + 6 * g.nodes[n]["technique_count"] for n in order],
            node_color=[g.nodes[n]["color"] for n in order],
            edgecolors="#333333",
            linewidths=0.5,
        )
        biggest = sorted(order, key=lambda n: (-g.nodes[n]["technique_count"], n))[:labels]
        if net.actor and net.actor in g and net.actor not in biggest:
            biggest.append(net.actor)
        nx.draw_networkx_labels(
            g, pos, ax=ax, labels={n: g.nodes[n]["name"] for n in biggest}, font_size=7
        )
    buf = io.BytesIO()
    # Fixed metadata and hash salt: the same network gives the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "ttpgraph"}):
        fig.savefig(
            buf,
            format=fmt.value,
            bbox_inches="tight",
            metadata={"Software": "ttpgraph"} if fmt == ExportFormat.png else {"Date": None},
        )
    return buf.getvalue()
