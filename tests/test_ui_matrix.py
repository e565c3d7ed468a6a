"""The ATT&CK matrix page (/ui/matrix) in a real headless Chromium, against the real API
(uvicorn, API keys on) over the session's real graph: each URL form the page takes.

What the page draws is checked against facts computed apart from it: the tactics and cells of
each matrix from the bundle JSON, the marked techniques from the service that answers the same
question (profile, compare, gap analysis, inventory coverage, telemetry), the evidence panel
from the bundle's relationships, the downloaded layer from the layer service (what the CLI's
``layer`` commands write). Screenshots go to test-artifacts/ (git-ignored).

Same browser set-up as tests/test_ui.py (Debian's chromium through Playwright; skipped without
chromium except in CI).
"""

from __future__ import annotations

import contextlib
import json
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from queries import actors as A
from queries import coverage as C
from queries.errors import NotFound
from queries.graph import Graph
from queries.layers.actor_layers import compare_layer_for, profile_layer_for
from queries.layers.detection_layers import gaps_layer_for, telemetry_layer_for

from . import test_ui as ui
from .bundle_facts import ext_id, is_current, mitigations_by_technique, objects
from .conftest import CORPORA, ENTERPRISE, ICS_21
from .test_matrix import (
    ENT,
    bundle_cells,
    bundle_matrix,
    groups_using,
    seen_by_data_component,
    strategies_detecting,
)

# The browser and the keyed API of the overlap page's tests (module-scoped: one each here).
api, browser_context, page = ui.api, ui.browser_context, ui.page
ARTIFACTS = ui.ARTIFACTS

ART = CORPORA / "atomic-red-team" / "atomics" / "Indexes"
ART_CSV = ART / "Indexes-CSV" / "windows-index.csv"
ART_LAYER = ART / "Attack-Navigator-Layers" / "art-navigator-layer.json"

# ---------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def inventories(graph: Graph) -> Iterator[dict[str, str]]:
    """Atomic Red Team's Windows index (CSV) and its Navigator layer, imported as inventories
    under names of this run; deleted at the end."""
    from loader.inventory.importer import delete_inventory, import_inventory

    tag = uuid.uuid4().hex[:8]
    names = {"csv": f"ui-matrix-{tag}-art", "layer": f"ui-matrix-{tag}-art-layer"}
    try:
        import_inventory(graph, "csv", ART_CSV, name=names["csv"])
        import_inventory(graph, "layer", ART_LAYER, name=names["layer"])
        yield names
    finally:
        for name in names.values():
            with contextlib.suppress(NotFound):
                delete_inventory(graph, name)


def open_matrix(page: Any, api: Any, query: str = "") -> None:
    """Open /ui/matrix, answer the key prompt as a person does, wait for the drawing."""
    page.goto(f"{api.url}/ui/matrix{query}")
    page.wait_for_selector("#auth:not([hidden]), body[data-state=ready], body[data-state=error]")
    if page.is_visible("#auth"):
        page.fill("#api-key", api.key)
        page.click("#auth button[type=submit]")
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_hidden("#auth")
    assert page.is_hidden("#error"), page.inner_text("#error")


def tactic_names(page: Any) -> list[str]:
    return page.eval_on_selector_all("#matrix .tactic h2 a", "els => els.map(e => e.textContent)")


def marked(page: Any) -> dict[str, list[str]]:
    """Technique id -> the tactics it is marked in."""
    rows = page.eval_on_selector_all(
        "#matrix .tech.marked", "els => els.map(e => [e.dataset.id, e.dataset.tactic])"
    )
    out: dict[str, list[str]] = {}
    for tid, tactic in rows:
        out.setdefault(tid, []).append(tactic)
    return out


def assert_marked(page: Any, expected: set[str], cells: dict[str, list[str]]) -> None:
    """The marked techniques are the answer's, each in every tactic of its own."""
    shown = marked(page)
    assert set(shown) == expected, (sorted(set(shown) - expected), sorted(expected - set(shown)))
    for tid in expected:
        assert sorted(shown[tid]) == sorted(cells[tid]), tid
    assert page.get_attribute("body", "data-marked") == str(len(expected))


def click_cell(page: Any, technique_id: str) -> None:
    cell = page.locator(f'#matrix .tech[data-id="{technique_id}"]').first
    cell.scroll_into_view_if_needed()
    cell.click()
    page.wait_for_selector(f'#panel[data-state=ready][data-technique="{technique_id}"]')


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"ui-matrix-{name}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    return shot


def download(page: Any, selector: str) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path())


# ---------------------------------------------------------------- the matrix alone


def test_the_matrix_of_the_release(page, api) -> None:
    open_matrix(page, api)
    names, shortnames = bundle_matrix(ENTERPRISE)
    assert tactic_names(page) == names
    cells = bundle_cells(ENTERPRISE, ENT)
    drawn = page.eval_on_selector_all(
        "#matrix .tech", "els => els.map(e => [e.dataset.id, e.dataset.tactic])"
    )
    assert sorted(map(tuple, drawn)) == sorted((t, ta) for t, tas in cells.items() for ta in tas)
    # Counts per tactic: techniques and sub-techniques of the column.
    for short in shortnames:
        here = [t for t, tas in cells.items() if short in tas]
        counts = page.locator(f'.tactic[data-tactic="{short}"] .counts')
        assert counts.get_attribute("data-techniques") == str(sum("." not in t for t in here))
        assert counts.get_attribute("data-subtechniques") == str(sum("." in t for t in here))
    assert page.get_attribute("body", "data-marked") == "0"

    # Sub-techniques are folded; one toggle opens its parent, the button opens them all.
    assert not page.is_visible('#matrix .tech[data-id="T1059.001"]')
    page.click('.tactic[data-tactic="execution"] .group:has(> .tech[data-id="T1059"]) .tog')
    assert page.is_visible('#matrix .tech[data-id="T1059.001"]')
    page.click("#expand")
    visible = page.eval_on_selector_all(
        "#matrix .tech", "els => els.filter(e => e.offsetParent !== null).length"
    )
    assert visible == len(drawn)
    assert "expand=all" in page.url

    # Search by id and by name: hits outlined, the count said.
    page.fill("#search", "powershell")
    page.wait_for_selector("#matrix.searching .tech.hit")
    hits = set(page.eval_on_selector_all("#matrix .tech.hit", "els => els.map(e => e.dataset.id)"))
    assert {"T1059.001", "T1546.013"} <= hits
    page.fill("#search", "T1055")
    page.wait_for_function("document.getElementById('search-count').textContent.startsWith('1')")
    hits = set(page.eval_on_selector_all("#matrix .tech.hit", "els => els.map(e => e.dataset.id)"))
    assert hits == {t for t in cells if t == "T1055" or t.startswith("T1055.")}
    assert page.inner_text("#search-count") == f"{len(hits)} found"
    assert not page.problems, page.problems
    assert not page.elsewhere, f"the page reached outside the API: {page.elsewhere}"


# ---------------------------------------------------------------- one actor


def test_an_actor_profile_and_its_evidence(page, api, graph: Graph) -> None:
    open_matrix(page, api, "?actor=APT29")
    cells = bundle_cells(ENTERPRISE, ENT)
    assert tactic_names(page) == bundle_matrix(ENTERPRISE)[0]
    profile = A.profile_group(graph, group="APT29", domain=ENT, limit=5000)
    expected = {t.technique_id for t in profile.techniques}
    assert_marked(page, expected, cells)
    assert page.get_attribute("body", "data-view") == "profile"
    # Colour by how we know: a technique APT29 uses directly is red, one only via campaign pale.
    kinds = {t.technique_id: {k.value for k in t.kinds} for t in profile.techniques}
    statuses = page.eval_on_selector_all(
        "#matrix .tech.marked", "els => els.map(e => [e.dataset.id, e.dataset.score])"
    )
    for tid, score in statuses:
        strongest = 3 if "direct" in kinds[tid] else 2 if "software" in kinds[tid] else 1
        assert score == str(strongest), tid

    # The evidence panel: who uses it (from the bundle), how APT29 does, detections, mitigations.
    click_cell(page, "T1059.001")
    shown = set(
        page.eval_on_selector_all(
            "#evidence li[data-group]", "els => els.map(e => e.dataset.group)"
        )
    )
    assert shown == groups_using(ENTERPRISE, "T1059.001")
    mine = page.eval_on_selector_all("#evidence li.mine", "els => els.map(e => e.dataset.group)")
    assert mine and set(mine) == {"G0016"}
    assert "APT29 has used encoded PowerShell scripts" in page.inner_text("#evidence")
    strategies = page.eval_on_selector_all(
        "#evidence [data-strategy]", "els => els.map(e => e.dataset.strategy)"
    )
    assert set(strategies) == strategies_detecting(ENTERPRISE, "T1059.001")
    mitigations = page.eval_on_selector_all(
        "#evidence [data-mitigation]", "els => els.map(e => e.dataset.mitigation)"
    )
    assert set(mitigations) == mitigations_by_technique([ENTERPRISE])["T1059.001"]
    attack = page.get_attribute("#evidence .links a.ext", "href")
    assert attack == "https://attack.mitre.org/techniques/T1059/001"
    assert "technique=T1059.001" in page.url  # the panel is part of the link
    screenshot(page, "profile-apt29")

    # Downloads: the layer is the layer service's (what `ttpgraph layer profile` writes).
    layer = json.loads(download(page, "#dl-layer").read_text(encoding="utf-8"))
    assert layer == profile_layer_for(graph, group="APT29", domain=ENT).layer
    svg = ET.fromstring(download(page, "#dl-svg").read_bytes())
    ns = "{http://www.w3.org/2000/svg}"
    rects = [r for r in svg.iter(f"{ns}rect") if r.get("class") == "cell marked"]
    assert len(rects) == sum(len(v) for v in marked(page).values())
    texts = {t.text for t in svg.iter(f"{ns}text")}
    assert set(bundle_matrix(ENTERPRISE)[0]) <= texts
    png = download(page, "#dl-png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = struct.unpack(">I", png[16:20])[0]
    assert width == 2 * int(float(svg.get("width") or 0))
    assert not page.problems, page.problems


# ---------------------------------------------------------------- several actors


def test_several_actors_as_heat_with_weights(page, api, graph: Graph) -> None:
    open_matrix(page, api, "?actor=APT29&actor=FIN7:2&actor=APT28")
    cells = bundle_cells(ENTERPRISE, ENT)
    comparison = A.compare_groups(graph, groups=["APT29", "FIN7", "APT28"], domain=ENT)
    expected = {t.technique_id for t in comparison.techniques}
    assert_marked(page, expected, cells)
    weights = {"G0016": 1, "G0046": 2, "G0007": 1}
    heat = {t.technique_id: sum(weights[g] for g in t.actors) for t in comparison.techniques}
    scores = page.eval_on_selector_all(
        "#matrix .tech.marked", "els => els.map(e => [e.dataset.id, e.dataset.score])"
    )
    assert all(float(s) == heat[tid] for tid, s in scores)
    legend = page.inner_text("#legend")
    assert "used by all 3 actors" in legend and "actors using it" in legend

    click_cell(page, "T1059.001")
    mine = set(
        page.eval_on_selector_all("#evidence li.mine", "els => els.map(e => e.dataset.group)")
    )
    assert mine == {"G0016", "G0046", "G0007"} & groups_using(ENTERPRISE, "T1059.001")
    screenshot(page, "compare-apt29-fin7x2-apt28")
    layer = json.loads(download(page, "#dl-layer").read_text(encoding="utf-8"))
    assert (
        layer
        == compare_layer_for(
            graph, groups=["APT29", "FIN7", "APT28"], weights={"FIN7": 2.0}, domain=ENT
        ).layer
    )

    # To their network neighbourhood, and from a group there back to its matrix.
    href = page.get_attribute("#network-link", "href")
    assert href == "./?actor=G0016&actor=G0046&actor=G0007"
    page.click("#network-link")
    page.wait_for_selector("body[data-state=ready][data-focus]")
    assert set(page.get_attribute("body", "data-focus").split(",")) == set(weights)
    page.wait_for_selector('#profile[data-state=ready][data-group="G0016"]')
    assert page.get_attribute("#matrix-link", "href") == "matrix?actor=G0016"
    page.click("#matrix-link")
    page.wait_for_selector("body[data-state=ready][data-view=profile]")
    assert page.url.endswith("/ui/matrix?actor=G0016")
    assert not page.problems, page.problems


# ---------------------------------------------------------------- coverage and gaps


def test_gaps_of_actors_in_an_inventory(page, api, graph: Graph, inventories) -> None:
    inv = inventories["csv"]
    open_matrix(page, api, f"?inventory={inv}&actor=APT29&actor=FIN7:2")
    cells = bundle_cells(ENTERPRISE, ENT)
    analysis = C.gap_analysis(graph, actors={"APT29": 1.0, "FIN7": 2.0}, inventory=inv, domain=ENT)
    assert_marked(page, {t.technique_id for t in analysis.techniques}, cells)
    status = dict(
        page.eval_on_selector_all(
            "#matrix .tech.marked", "els => els.map(e => [e.dataset.id, e.dataset.status])"
        )
    )
    for t in analysis.techniques:
        want = "covered" if t.covered else "partial" if t.partial else "gap"
        assert status[t.technique_id] == want, t.technique_id
    summary = page.inner_text("#summary")
    gaps = sum(1 for t in analysis.techniques if not t.covered and not t.partial)
    assert f"{sum(t.covered for t in analysis.techniques)} covered" in summary
    assert f"{gaps} gaps" in summary

    covered = next(t for t in analysis.techniques if t.covered and t.rules)
    click_cell(page, covered.technique_id)
    rules = page.eval_on_selector_all("#evidence .rules li", "els => els.map(e => e.textContent)")
    assert set(covered.rules[:200]) <= set(rules)
    screenshot(page, "gaps")
    layer = json.loads(download(page, "#dl-layer").read_text(encoding="utf-8"))
    assert (
        layer
        == gaps_layer_for(
            graph, actors={"APT29": 1.0, "FIN7": 2.0}, inventory=inv, domain=ENT
        ).layer
    )
    assert not page.problems, page.problems


@pytest.mark.parametrize("kind", ["inventory", "layer"])
def test_what_an_inventory_or_an_imported_layer_covers(page, api, graph, inventories, kind) -> None:
    name = inventories["csv" if kind == "inventory" else "layer"]
    open_matrix(page, api, f"?{kind}={name}")
    coverage = C.inventory_coverage(graph, inventory=name, domain=ENT)
    cells = bundle_cells(ENTERPRISE, ENT)
    assert_marked(page, {t.technique_id for t in coverage.techniques}, cells)
    status = dict(
        page.eval_on_selector_all(
            "#matrix .tech.marked", "els => els.map(e => [e.dataset.id, e.dataset.status])"
        )
    )
    assert {t for t, s in status.items() if s == "partial"} == {
        t.technique_id for t in coverage.techniques if t.partial
    }
    if kind == "layer":
        # Straight from the file: every technique the layer scores above 0 is covered.
        scored = {
            e["techniqueID"]
            for e in json.loads(ART_LAYER.read_text(encoding="utf-8"))["techniques"]
            if (e.get("score") or 0) > 0 and e["techniqueID"] in cells
        }
        assert scored == {t for t, s in status.items() if s == "covered"}
    screenshot(page, f"coverage-{kind}")
    assert not page.problems, page.problems


# ---------------------------------------------------------------- telemetry, platform, domain


def test_what_a_data_component_sees(page, api, graph: Graph) -> None:
    open_matrix(page, api, "?telemetry=" + quote("Process Creation"))
    cells = bundle_cells(ENTERPRISE, ENT)
    expected = seen_by_data_component(ENTERPRISE, "Process Creation") & set(cells)
    assert_marked(page, expected, cells)
    export = telemetry_layer_for(graph, sources=["Process Creation"], domain=ENT)
    assert {e["techniqueID"] for e in export.layer["techniques"] if e.get("score")} == expected
    click_cell(page, "T1059.001")
    assert "Process Creation (DC0032)" in page.inner_text("#evidence [data-part=in]")
    screenshot(page, "telemetry-process-creation")
    assert not page.problems, page.problems


def test_a_log_source_with_actors(page, api, graph: Graph) -> None:
    open_matrix(page, api, "?telemetry=WinEventLog:Security&actor=FIN7")
    export = telemetry_layer_for(
        graph, sources=["WinEventLog:Security"], level="log_source", actors=["FIN7"], domain=ENT
    )
    cells = bundle_cells(ENTERPRISE, ENT)
    scored = {e["techniqueID"]: e["score"] for e in export.layer["techniques"] if "score" in e}
    assert_marked(page, set(scored), cells)
    seen = set(
        page.eval_on_selector_all(
            "#matrix .tech[data-status=seen]", "els => els.map(e => e.dataset.id)"
        )
    )
    assert seen == {t for t, s in scored.items() if s > 0}
    assert not page.problems, page.problems


def test_one_platform(page, api, graph: Graph) -> None:
    open_matrix(page, api, "?platform=Windows&actor=APT29")
    facts = {
        ext_id(o): o.get("x_mitre_platforms", [])
        for o in objects(ENTERPRISE)
        if o["type"] == "attack-pattern" and is_current(o)
    }
    cells = {t: v for t, v in bundle_cells(ENTERPRISE, ENT).items() if "Windows" in facts[t]}
    on = page.eval_on_selector_all(
        "#matrix .tech:not(.off)", "els => els.map(e => [e.dataset.id, e.dataset.tactic])"
    )
    assert sorted(map(tuple, on)) == sorted((t, ta) for t, tas in cells.items() for ta in tas)
    profile = A.profile_group(graph, group="APT29", domain=ENT, platforms=["Windows"], limit=5000)
    assert_marked(page, {t.technique_id for t in profile.techniques}, cells)
    assert page.input_value("#platform") == "Windows"
    assert not page.problems, page.problems


def test_the_ics_matrix(page, api, graph: Graph) -> None:
    open_matrix(page, api, "?domain=ics-attack&actor=" + quote("Sandworm Team"))
    names, _ = bundle_matrix(ICS_21)
    assert tactic_names(page) == names
    cells = bundle_cells(ICS_21, "ics-attack")
    assert int(page.get_attribute("body", "data-cells") or 0) == sum(map(len, cells.values()))
    profile = A.profile_group(graph, group="Sandworm Team", domain="ics-attack", limit=5000)
    assert_marked(page, {t.technique_id for t in profile.techniques}, cells)
    click_cell(page, "T0855")
    assert "Sandworm Team" in page.inner_text("#evidence li.mine")
    screenshot(page, "ics-sandworm")
    assert not page.problems, page.problems


def test_a_bad_actor_is_said_and_the_matrix_stays(page, api) -> None:
    page.goto(f"{api.url}/ui/matrix?actor=" + quote("APT 29"))
    page.wait_for_selector("#auth:not([hidden]), body[data-state=error]")
    if page.is_visible("#auth"):
        page.fill("#api-key", api.key)
        page.click("#auth button[type=submit]")
    page.wait_for_selector("body[data-state=error]")
    assert "no group named 'APT 29'" in page.inner_text("#error")
    assert "APT29 (G0016)" in page.inner_text("#error")  # the close match
    assert len(tactic_names(page)) == len(bundle_matrix(ENTERPRISE)[0])
