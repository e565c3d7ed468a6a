"""Peak memory (RSS) of the loader process: Enterprise 18.1 alone and the three domains together.

Each figure is a fresh Python process (peak RSS from ``getrusage``), loading into an emptied
database on a throw-away Neo4j; the phases show where the memory goes (parse, validate and
build rows, write). In the same run: mitreattack-python's ``MitreAttackData`` on the same file
(the peer), and a streaming parse with ``ijson`` (to see whether parsing incrementally would pay).

    python -m benchmarks.bench_memory [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from queries.graph import Graph

from .common import ATTACK, ENTERPRISE, bench_server, described

MOBILE = ATTACK / "mobile-attack-18.1.json"
ICS = ATTACK / "ics-attack-18.1.json"

LOADER = """
import gc, json, resource, sys, time
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def now():
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * 4096 / 2**20
from loader import sources
from loader.load import load_bundle, prepare
from queries.graph import Graph
from queries.settings import Settings
out = {"imports": peak()}
g = None
if sys.argv[1] != "-":
    g = Graph.connect(Settings(neo4j_uri=sys.argv[1], neo4j_password=sys.argv[2]))
t0 = time.perf_counter()
for path in sys.argv[3:]:
    fetched = sources.from_file(path)
    out.setdefault("parsed", peak())
    if g is None:
        rows = prepare(fetched)
        out.setdefault("rows", peak())
        del rows
    else:
        load_bundle(g, fetched)
    del fetched
    gc.collect()
    out.setdefault("after_first", now())
out["peak"] = peak()
out["seconds"] = time.perf_counter() - t0
print(json.dumps(out))
"""

MITRE = """
import json, resource, sys
from mitreattack.stix20 import MitreAttackData
MitreAttackData(sys.argv[1])
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PARSE = """
import json, resource, sys
kind, path = sys.argv[1], sys.argv[2]
if kind == "orjson":
    import orjson
    with open(path, "rb") as f:
        objects = orjson.loads(f.read())["objects"]
else:
    import ijson
    with open(path, "rb") as f:
        objects = list(ijson.items(f, "objects.item", use_float=True))
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "objects": len(objects)}))
"""


def run_py(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    three = [str(ENTERPRISE), str(MOBILE), str(ICS)]
    results: dict[str, list[dict]] = {}
    with bench_server() as settings:
        graph = Graph.connect(settings)
        for name, files in (("Enterprise 18.1", [str(ENTERPRISE)]), ("three domains", three)):
            for _ in range(args.runs):
                graph.write("MATCH (n) DETACH DELETE n")
                results.setdefault(f"load {name}", []).append(
                    run_py(LOADER, settings.neo4j_uri, settings.neo4j_password, *files)
                )
        graph.close()
    for _ in range(args.runs):
        results.setdefault("validate + rows only, Enterprise (no database)", []).append(
            run_py(LOADER, "-", "-", str(ENTERPRISE))
        )
        results.setdefault("parse only: orjson (what the loader does)", []).append(
            run_py(PARSE, "orjson", str(ENTERPRISE))
        )
        try:  # ijson is not a dependency: the row shows only where it is installed
            results.setdefault("parse only: ijson streaming", []).append(
                run_py(PARSE, "ijson", str(ENTERPRISE))
            )
        except subprocess.CalledProcessError:
            results.pop("parse only: ijson streaming", None)
        results.setdefault("mitreattack-python MitreAttackData, Enterprise", []).append(
            run_py(MITRE, str(ENTERPRISE))
        )

    def med(rows: list[dict], key: str) -> str:
        vals = [r[key] for r in rows if key in r]
        return f"{statistics.median(vals):.0f}" if vals else ""

    print(f"Peak RSS of a fresh process, MB (median of {args.runs}); "
          f"Enterprise 18.1 is {ENTERPRISE.stat().st_size / 1e6:.1f} MB of JSON")  # fmt: skip
    print(f"{'':52} {'imports':>8} {'parsed':>8} {'rows':>8} {'peak':>8} {'s':>7}")
    for name, rows in results.items():
        secs = [r["seconds"] for r in rows if "seconds" in r]
        print(
            f"{name:52} {med(rows, 'imports'):>8} {med(rows, 'parsed'):>8} "
            f"{med(rows, 'rows'):>8} {med(rows, 'peak'):>8} "
            f"{(f'{statistics.median(secs):.2f}' if secs else ''):>7}"
        )


if __name__ == "__main__":
    main()
