"""The actor-overlap network at scale: ATT&CK's real groups and synthetic actors up to 2,000
and 10,000 (``benchmarks.synthetic.actor_sets``, seeded), the network built from their
technique sets (``queries.overlap.build_network``: pairs, Louvain communities, centrality),
against the pair-by-pair Python sets it replaced (the peer; at most 2,000 actors: it is
quadratic) and the bare pair computation (the floor).

    python -m benchmarks.bench_overlap [--sizes 169,2000,10000] [--runs 3]

Two ways to draw the synthetic actors' techniques: ``uniform`` (actors rarely overlap: the
network stays small, the cost is finding the pairs) and ``popular`` (drawn by how many groups
use each technique, as in the real data: most actors share many techniques and the network is
dense). No database: the technique sets are what ``group_technique_sets`` returns, built here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from itertools import combinations
from typing import Any

import networkx as nx

from queries.overlap import Metric, build_network, overlap_pairs

from .common import described
from .synthetic import actor_sets


def pairwise_graph(sets: dict[str, tuple[str, set[str]]], threshold: float) -> nx.Graph:
    """The network's edges found pair by pair with Python sets (what the code did before)."""
    ids = sorted(g for g, (_, t) in sets.items() if t)
    g = nx.Graph()
    for a, b in combinations(ids, 2):
        sa, sb = sets[a][1], sets[b][1]
        common = sa & sb
        if common and len(common) / len(sa | sb) >= threshold:
            g.add_edge(a, b, weight=len(common) / len(sa | sb))
    return g


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    values, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        values.append((time.perf_counter() - t0) * 1000)
    return statistics.median(values), out


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--sizes", default="169,2000,10000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.2)
    args = ap.parse_args()
    print("| actors | draw | nodes | edges | communities | betweenness | network ms | "
          "pairs only ms (floor) | pair by pair ms (peer) | load avg |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for n in (int(x) for x in args.sizes.split(",")):
        for draw in ("uniform", "popular"):
            sets = actor_sets(n, draw=draw)
            ms, net = timed(lambda sets=sets: build_network(sets, threshold=args.threshold),
                            args.runs)  # fmt: skip
            floor, _ = timed(
                lambda sets=sets: overlap_pairs(sets, metric=Metric.jaccard,
                                                threshold=args.threshold),
                args.runs,
            )  # fmt: skip
            peer = "-"
            if n <= 2000:
                pms, _ = timed(lambda sets=sets: pairwise_graph(sets, args.threshold), 1)
                peer = f"{pms:,.0f}"
            bc = (
                "exact" if net.betweenness_sources is None else f"{net.betweenness_sources} sources"
            )
            print(f"| {n:,} | {draw} | {net.node_count:,} | {net.edge_count:,} | "
                  f"{len(net.communities)} | {bc} | {ms:,.0f} | {floor:,.0f} | {peer} | "
                  f"{os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
