"""The overlap page in a real headless Chromium (Debian's, driven by Playwright), against the
real API served by uvicorn on a free loopback port, over the session's real graph.

What the page shows is checked against the overlap network computed from the bundle JSON
(tests/test_overlap.py's oracle), not against what the API answered. A screenshot is saved
under test-artifacts/.

Needs Debian's chromium (``apt-get install -y chromium``) and the ``playwright`` Python package;
Playwright's own browser download is never used. Without chromium the tests are skipped, except
in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queries.settings import Settings

from .conftest import REPO, SESSION_BUNDLES, free_port
from .test_overlap import bundle_technique_sets, expected_edges, with_read_key

CHROMIUM = os.environ.get("TTPGRAPH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 60_000

if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def oracle() -> dict[str, set[str]]:
    return bundle_technique_sets(SESSION_BUNDLES)


@pytest.fixture(scope="module")
def api(graph, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real API (uvicorn, auth on with a read key) on a free 127.0.0.1 port."""
    import uvicorn

    from api.app import create_app

    keyed, token = with_read_key(settings, tmp_path_factory.mktemp("ui-keys"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(keyed), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield type("Api", (), {"url": f"http://127.0.0.1:{port}", "key": token})
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture()
def page(browser_context, api) -> Iterator[Any]:
    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # The first API call answers 401 until the key is given: that one is expected.
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and "status of 401" not in m.text
            else None
        ),
    )
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url) if not r.url.startswith((api.url, "data:", "blob:")) else None
        ),
    )
    page.problems = problems
    page.elsewhere = elsewhere
    yield page
    page.close()


def open_page(page: Any, api: Any, query: str = "") -> None:
    """Open /ui/, answer the API-key prompt the way a person does (the page remembers the key
    afterwards, so later visits go straight to the drawing), wait for the drawing."""
    page.goto(f"{api.url}/ui/{query}")
    page.wait_for_selector("#auth:not([hidden]), body[data-state=ready]")
    if page.is_visible("#auth"):
        page.fill("#api-key", api.key)
        page.click("#auth button[type=submit]")
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_hidden("#auth")


def linked_groups(oracle: dict[str, set[str]], threshold: float) -> set[str]:
    return {g for pair in expected_edges(oracle, threshold) for g in pair}


def click_node(page: Any, group_id: str) -> None:
    """Zoom the camera onto the node, then click it with the mouse where it is drawn."""
    x, y = page.evaluate(
        """(id) => {
          const cy = window.ttpgraph.cy;
          const node = cy.getElementById(id);
          cy.zoom({ level: 2.5, position: node.position() });
          cy.center(node);
          const r = node.renderedPosition();
          const box = document.getElementById('network').getBoundingClientRect();
          return [box.left + r.x, box.top + r.y];
        }""",
        group_id,
    )
    page.mouse.click(x, y)


def test_page_draws_the_network_for_a_threshold(page, api, oracle) -> None:
    open_page(page, api)
    expected = linked_groups(oracle, 0.2)  # the page's default threshold
    assert page.inner_text("#node-count") == str(len(expected))
    drawn = set(page.evaluate("() => window.ttpgraph.cy.nodes().map((n) => n.id())"))
    assert drawn == expected
    edges = page.evaluate("() => window.ttpgraph.cy.edges().length")
    assert edges == len(expected_edges(oracle, 0.2))

    # Move the slider with the keyboard: ten steps of 0.01 up.
    page.focus("#threshold")
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector('body[data-state=ready][data-threshold="0.3"]')
    assert page.inner_text("#threshold-value") == "0.30"
    assert page.inner_text("#node-count") == str(len(linked_groups(oracle, 0.3)))
    assert "threshold=0.3" in page.url
    assert not page.problems, page.problems
    assert not page.elsewhere, f"the page reached outside the API: {page.elsewhere}"


def test_clicking_a_group_shows_what_it_shares(page, api, oracle) -> None:
    open_page(page, api)
    click_node(page, "G0007")  # APT28
    page.wait_for_selector('#profile[data-state=ready][data-group="G0007"]')
    assert page.inner_text("#profile-name") == "APT28"
    pairs = expected_edges(oracle, 0.2)
    neighbours = {b if a == "G0007" else a for a, b in pairs if "G0007" in (a, b)}
    shown = page.eval_on_selector_all("#neighbours > li", "els => els.map(e => e.dataset.group)")
    assert set(shown) == neighbours and len(shown) == len(neighbours)
    for other in neighbours:
        techniques = page.eval_on_selector_all(
            f'#neighbours > li[data-group="{other}"] .shared-technique',
            "els => els.map(e => e.dataset.technique)",
        )
        assert set(techniques) == oracle["G0007"] & oracle[other]
    # Names come from the profile: T1059.001 is shared with APT29 and shows its name.
    apt29 = page.inner_text('#neighbours > li[data-group="G0016"]')
    assert "T1059.001" in apt29 and "PowerShell" in apt29
    href = page.get_attribute("#layer-link", "href")
    assert href.startswith("/api/v1/layers/compare?actor=G0007")
    assert set(re.findall(r"actor=(G\d{4})", href)) == neighbours | {"G0007"}

    # The comparison as a Navigator layer: fetched with the key, saved as a file.
    with page.expect_download() as info:
        page.click("#layer-link")
    layer = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    scored = {t["techniqueID"] for t in layer["techniques"]}
    assert "T1059.001" in scored  # used by APT28 and shared with APT29
    assert layer["versions"]["layer"].startswith("4.")

    page.evaluate(  # frame the group and its neighbours for the picture
        "() => { const cy = window.ttpgraph.cy;"
        " cy.fit(cy.getElementById('G0007').closedNeighborhood(), 40); }"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ui-overlap-apt28.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not page.problems, page.problems


def test_search_finds_an_alias(page, api, oracle) -> None:
    open_page(page, api, "?threshold=0.25")
    page.fill("#search", "Cozy Bear")  # an alias: resolved by the API
    page.press("#search", "Enter")
    page.wait_for_selector('#profile[data-state=ready][data-group="G0016"]')
    pairs = expected_edges(oracle, 0.25)
    neighbours = {b if a == "G0016" else a for a, b in pairs if "G0016" in (a, b)}
    assert page.inner_text("#neighbour-count") == str(len(neighbours))
    assert page.is_visible("#no-neighbours") == (not neighbours)
    assert not page.problems, page.problems


def test_actor_in_the_url_may_be_a_name(page, api, oracle) -> None:
    """?actor=APT28 (a name, as people type it) opens APT28's panel like ?actor=G0007 does."""
    open_page(page, api, "?actor=APT28")
    page.wait_for_selector('#profile[data-state=ready][data-group="G0007"]')
    assert page.inner_text("#profile-name") == "APT28"
    assert page.inner_text("#profile-id") == "G0007"
    pairs = expected_edges(oracle, 0.2)
    neighbours = {b if a == "G0007" else a for a, b in pairs if "G0007" in (a, b)}
    assert page.inner_text("#neighbour-count") == str(len(neighbours)) != "0"
    assert "actor=G0007" in page.url
    assert not page.problems, page.problems
