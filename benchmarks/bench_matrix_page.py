"""How fast the ATT&CK matrix page (/ui/matrix) draws, in Debian's Chromium (Playwright).

    python -m benchmarks.bench_matrix_page [--runs 7]

One command, nothing to prepare: a throw-away Neo4j (heap 1 GB) loaded with Enterprise ATT&CK
18.1, the Atomic Red Team Windows index imported as an inventory, the API (uvicorn, one
worker, no keys, loopback) and a headless Chromium at 1400x900. No randomness.

Figures, from the page's own performance marks (``matrix:data`` when the matrix and the
answer have arrived and are parsed, ``matrix:drawn`` two animation frames after the DOM work,
i.e. once painted): the median and worst of ``--runs`` loads of each view, the first of which
(cold caches) is left out. Then, on the Enterprise matrix with an answer: expanding every
sub-technique, a search on the expanded matrix, collapsing, and clicking a cell until its
evidence panel is drawn. The floor is the same DOM without any answer (the bare matrix); the
peer is the Navigator-like cost of creating one element per cell in a single innerHTML (no
colouring), measured in the same page. The machine's load average is printed: other
processes share the two cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from typing import Any

from loader.inventory.importer import import_inventory
from loader.load import load_file
from queries.graph import Graph

from .common import ENTERPRISE, REPO, bench_server, described, free_port

CHROMIUM = os.environ.get("TTPGRAPH_CHROMIUM", "/usr/bin/chromium")
ART_CSV = (
    REPO.parent / "shared" / "corpora" / "atomic-red-team" / "atomics" / "Indexes"
    / "Indexes-CSV" / "windows-index.csv"
)  # fmt: skip
VIEWS = {
    "bare matrix (floor)": "",
    "profile APT29": "?actor=APT29",
    "heat APT29, FIN7:2, APT28": "?actor=APT29&actor=FIN7:2&actor=APT28",
    "the same, all sub-techniques expanded": "?actor=APT29&actor=FIN7:2&actor=APT28&expand=all",
    "gaps APT29, FIN7 in ART": "?inventory={inv}&actor=APT29&actor=FIN7",
    "coverage ART": "?inventory={inv}",
    "telemetry Process Creation": "?telemetry=Process%20Creation",
}

INTERACT = """async () => {
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const out = {};
  let t = performance.now();
  document.getElementById('expand').click();
  await frames();
  out['expand all sub-techniques'] = performance.now() - t;
  out.shown = [...document.querySelectorAll('#matrix .tech')]
    .filter((e) => e.offsetParent !== null).length;
  const search = document.getElementById('search');
  t = performance.now();
  search.value = 'powershell';
  search.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
  await frames();
  out['search on the expanded matrix'] = performance.now() - t;
  search.value = '';
  search.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
  await frames();
  t = performance.now();
  document.getElementById('expand').click();
  await frames();
  out['collapse all'] = performance.now() - t;
  t = performance.now();
  const html = [];
  for (const c of document.querySelectorAll('#matrix .tech')) {
    html.push(`<div class="tech"><span>${c.dataset.id}</span> ${c.textContent}</div>`);
  }
  const box = document.createElement('div');
  box.style.cssText = 'position:absolute;left:0;top:0;width:1400px;display:flex;flex-wrap:wrap';
  document.body.append(box);
  box.innerHTML = html.join('');
  await frames();
  out['peer: one innerHTML of every cell, no colour'] = performance.now() - t;
  box.remove();
  return out;
}"""


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def serve(settings: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    from api.app import create_app

    s = settings.model_copy(update={"ttpgraph_api_auth": False})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(s), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def main() -> None:
    ap = argparse.ArgumentParser(description=described(__doc__))
    ap.add_argument("--runs", type=int, default=7, help="loads per view (the first is left out)")
    ap.add_argument("--url", help="an API already serving the data (no key): skip the set-up")
    ap.add_argument("--inventory", default="art", help="with --url: the inventory to use")
    args = ap.parse_args()
    if args.url:
        measure(args.url.rstrip("/"), args.runs, args.inventory)
        return
    with bench_server(heap="1g") as settings:
        graph = Graph.connect(settings)
        load_file(graph, str(ENTERPRISE))
        import_inventory(graph, "csv", ART_CSV, name="art")
        graph.close()
        server, thread, url = serve(settings)
        try:
            measure(url, args.runs, "art")
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def measure(url: str, runs_per_view: int, inventory: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            viewport={"width": 1400, "height": 900},
        )
        page = browser.new_page()
        print(f"Matrix page draw, ms (Chromium, 1400x900; load average {load_average()})")
        print(f"{'view':40} {'cells':>6} {'marked':>6} {'draw median':>12} "
              f"{'draw max':>9} {'of it script':>12} {'request->drawn':>15}")  # fmt: skip
        for name, query in VIEWS.items():
            draws, scripts, totals = [], [], []
            for _ in range(runs_per_view):
                page.goto(f"{url}/ui/matrix{query.format(inv=inventory)}")
                page.wait_for_selector("body[data-state=ready]", timeout=120_000)
                t = page.evaluate("() => window.ttpgraphMatrix.state.timings")
                draws.append(t["draw"])
                scripts.append(t["script"])
                totals.append(t["total"])
            body = page.evaluate("() => ({...document.body.dataset})")
            kept = draws[1:] or draws
            print(
                f"{name:40} {body['cells']:>6} {body['marked']:>6} "
                f"{statistics.median(kept):12.1f} {max(kept):9.1f} "
                f"{statistics.median(scripts[1:] or scripts):12.1f} "
                f"{statistics.median(totals[1:] or totals):15.1f}"
            )
        print(f"\nInteractions on the heat view, ms (load average {load_average()})")
        runs: dict[str, list[float]] = {}
        shown = 0
        for _ in range(max(3, runs_per_view // 2)):
            page.goto(f"{url}/ui/matrix{VIEWS['heat APT29, FIN7:2, APT28']}")
            page.wait_for_selector("body[data-state=ready]", timeout=120_000)
            figures = page.evaluate(INTERACT)
            shown = figures.pop("shown")
            for k, v in figures.items():
                runs.setdefault(k, []).append(v)
            t0 = time.perf_counter()
            page.click('#matrix .tech[data-id="T1059"]')
            page.wait_for_selector('#panel[data-state=ready][data-technique="T1059"]')
            runs.setdefault("click a cell -> evidence panel drawn", []).append(
                (time.perf_counter() - t0) * 1000
            )
        print(f"  ({shown} cells shown with every sub-technique expanded)")
        for k, v in runs.items():
            print(f"  {k:48} median {statistics.median(v):8.1f}  max {max(v):8.1f}")
        browser.close()


if __name__ == "__main__":
    main()
