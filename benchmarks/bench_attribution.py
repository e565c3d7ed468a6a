"""Who fits an incident: the recall check and its cost.

    python -m benchmarks.bench_attribution [--trials 20] [--seed 0] [--uri bolt://...]

The recall check: for real ATT&CK groups, hide the group, give a random (seeded) half of its
techniques, rank every group as ``ttpgraph attribute`` does, and count how often the hidden
group lands in the top 5 (ties count against it). Printed overall and per group, for the 20
named groups of ``queries.intel.RECALL_GROUPS`` and for every group with at least 10
techniques, then for harder observations (a quarter, a tenth, with unrelated techniques
mixed in). The same samples are ranked by four peers in the same run: plain Jaccard (what
``ttpgraph similar`` uses), unweighted cosine, IDF-weighted coverage of the observation, and
the IDF-weighted cosine alone (the score's similarity part, without the coverage).

Then the cost: warm latency of ``attribute`` (answer cache off) and of ``ioc``, and the time to
import the OpenCTI fixture. The server is a throw-away Neo4j loaded with Enterprise 18.1 unless
``--uri`` names one already loaded.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TTPGRAPH_ANSWER_CACHE", "0")  # measure the work, not the cache

from loader import intel as intel_loader  # noqa: E402
from loader.load import load_file  # noqa: E402
from queries import intel  # noqa: E402
from queries.graph import Graph  # noqa: E402
from queries.settings import Settings  # noqa: E402

from .common import ENTERPRISE, bench_server, described, summary  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "intel"

Scorer = Callable[[set[str], dict[str, set[str]], Callable[[str], float]], dict[str, float]]


def jaccard(observed: set[str], sets: dict[str, set[str]], _w: Any) -> dict[str, float]:
    return {a: len(observed & s) / len(observed | s) for a, s in sets.items() if observed & s}


def cosine(observed: set[str], sets: dict[str, set[str]], _w: Any) -> dict[str, float]:
    return {
        a: len(observed & s) / math.sqrt(len(observed) * len(s))
        for a, s in sets.items()
        if observed & s
    }


def weighted_coverage(
    observed: set[str], sets: dict[str, set[str]], w: Callable[[str], float]
) -> dict[str, float]:
    total = sum(w(t) for t in observed)
    return {a: sum(w(t) for t in observed & s) / total for a, s in sets.items() if observed & s}


def weighted_cosine(
    observed: set[str], sets: dict[str, set[str]], w: Callable[[str], float]
) -> dict[str, float]:
    """The similarity part alone (ttpgraph's score before coverage counted in it)."""
    o_norm = math.sqrt(sum(w(t) ** 2 for t in observed))
    return {
        a: sum(w(t) ** 2 for t in observed & s) / (o_norm * math.sqrt(sum(w(t) ** 2 for t in s)))
        for a, s in sets.items()
        if observed & s
    }


PEERS: dict[str, Scorer] = {
    "jaccard (ttpgraph similar)": jaccard,
    "cosine, unweighted": cosine,
    "IDF-weighted coverage": weighted_coverage,
    "IDF cosine (similarity only)": weighted_cosine,
}


def peer_rates(
    pool: Any, groups: list[str], *, trials: int, fraction: float, noise: int, seed: int
) -> dict[str, float]:
    """Each peer's top-5 rate on exactly the samples attribution_recall draws."""
    sets = {a: set(techs) for a, (_, _, techs) in pool.actors.items()}
    hits = dict.fromkeys(PEERS, 0)
    total = 0
    for gid in groups:
        everything = sorted(sets[gid])
        others = sorted(set(pool.df) - sets[gid])
        k = max(1, round(len(everything) * fraction))
        rng = random.Random(f"{seed}:{gid}")
        for _ in range(trials):
            sample = set(rng.sample(everything, k)) | set(rng.sample(others, noise))
            total += 1
            for name, fn in PEERS.items():
                scores = fn(sample, sets, pool.weight)
                mine = scores.get(gid, 0.0)
                rank = 1 + sum(1 for a, s in scores.items() if a != gid and s >= mine)
                hits[name] += rank <= 5
    return {name: h / total for name, h in hits.items()}


def timed(fn: Callable[[], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        values.append((time.perf_counter() - t0) * 1000)
    return summary(values)


def run(graph: Graph, *, trials: int, seed: int, runs: int) -> None:
    pool, _ = intel.actor_pool(
        graph, include_software=False, domain="enterprise-attack", include_org=False, rollup=False
    )
    print(f"Enterprise ATT&CK: {pool.n} groups with techniques (direct and through campaigns)\n")

    t0 = time.perf_counter()
    named = intel.attribution_recall(graph, trials=trials, seed=seed)
    took = time.perf_counter() - t0
    print(f"Recall check: hidden group in the top 5, half its techniques, {trials} trials each")
    print(f"{'group':<10}{'name':<24}{'techniques':>11}{'sample':>8}{'top-5':>8}"
          f"{'median rank':>13}{'worst':>7}")  # fmt: skip
    for g in named.groups:
        print(f"{g.group_id:<10}{g.name[:23]:<24}{g.technique_count:>11}{g.sample_size:>8}"
              f"{g.rate:>8.0%}{g.median_rank:>13g}{max(g.ranks):>7}")  # fmt: skip
    print(f"overall: {named.hits}/{named.total} = {named.rate:.1%}  ({took:.2f} s)\n")

    eligible = sorted(
        a for a, (_, _, techs) in pool.actors.items() if len(techs) >= 10
    )  # fmt: skip
    print(f"{'observation':<46}{'groups':>7}{'ttpgraph':>10}" + "".join(
        f"{p:>28}" for p in PEERS))  # fmt: skip
    for label, groups, fraction, noise in [
        ("half, 20 named groups", list(intel.RECALL_GROUPS), 0.5, 0),
        ("half, every group with >= 10 techniques", eligible, 0.5, 0),
        ("a quarter, every group >= 10", eligible, 0.25, 0),
        ("a tenth, every group >= 10", eligible, 0.1, 0),
        ("a quarter + 5 unrelated techniques", eligible, 0.25, 5),
        ("half + 10 unrelated techniques", eligible, 0.5, 10),
    ]:
        ours = intel.attribution_recall(
            graph,
            groups=["all"] if groups is eligible else groups,
            trials=trials,
            fraction=fraction,
            noise=noise,
            seed=seed,
        )
        peers = peer_rates(pool, [g.group_id for g in ours.groups], trials=trials,
                           fraction=fraction, noise=noise, seed=seed)  # fmt: skip
        print(f"{label:<46}{len(ours.groups):>7}{ours.rate:>10.1%}" + "".join(
            f"{v:>28.1%}" for v in peers.values()))  # fmt: skip

    observed = ["T1566.001", "T1059.001", "T1105", "T1071.001", "T1053.005", "T1547.001"]
    graph.cache.enabled = False
    lat = timed(lambda: intel.attribute(graph, techniques=observed, limit=10), runs)
    print(f"\nattribute (6 techniques, top 10 with evidence), answer cache off: median "
          f"{lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms (n={lat['n']})")  # fmt: skip
    # An analyst asking about different incidents: every answer is new, the actors' technique
    # sets (the pool) are reused until the graph changes.
    graph.cache.enabled = True
    rng = random.Random(seed)
    every = sorted(pool.df)
    asks = iter([rng.sample(every, 6) for _ in range(runs + 3)])
    lat = timed(lambda: intel.attribute(graph, techniques=next(asks), limit=10), runs)
    print(f"attribute, a different observation each time (pool cached per graph version): "
          f"median {lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms")  # fmt: skip
    graph.cache.enabled = False
    imports = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = intel_loader.import_intel_file(
            graph, FIXTURE / "opencti_export.json", source="bench opencti"
        )
        imports.append(time.perf_counter() - t0)
    print(f"import of the OpenCTI fixture ({sum(res.nodes.values())} nodes, "
          f"{sum(res.relationships.values())} relationships): median "
          f"{statistics.median(imports) * 1000:.0f} ms")  # fmt: skip
    lat = timed(lambda: intel.ioc_lookup(graph, value="203.0.113.77"), runs)
    print(f"ioc 203.0.113.77: median {lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms")
    intel_loader.delete_source(graph, "bench opencti")


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=30, help="latency samples")
    ap.add_argument("--uri", help="use this Neo4j (already loaded with ATT&CK)")
    ap.add_argument("--user", default="neo4j")
    ap.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD", ""))
    args = ap.parse_args()
    if args.uri:
        settings = Settings(neo4j_uri=args.uri, neo4j_user=args.user,
                            neo4j_password=args.password)  # fmt: skip
        with Graph.connect(settings) as graph:
            run(graph, trials=args.trials, seed=args.seed, runs=args.runs)
        return
    with bench_server() as settings, Graph.connect(settings) as graph:
        print(f"loading {ENTERPRISE.name} into a throw-away Neo4j...")
        load_file(graph, str(ENTERPRISE))
        run(graph, trials=args.trials, seed=args.seed, runs=args.runs)


if __name__ == "__main__":
    main()
