"""/docs (Swagger UI) and /redoc (ReDoc) render in a real headless Chromium with nothing but
what the API serves: the operation list drawn equals the operations of /openapi.json, and no
request leaves the API's origin (a machine without internet sees the same page).

Uses the real API on a free loopback port (auth on: the docs are open) from tests/test_ui.py;
skipped without chromium except in CI, like it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .test_ui import ARTIFACTS, TIMEOUT_MS, api, browser_context  # noqa: F401 - fixtures

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture()
def offline_page(browser_context, api) -> Iterator[Any]:  # noqa: F811 - fixtures
    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    errors: list[str] = []
    local = (api.url, "data:", "blob:")

    def went_out(request: Any) -> None:
        # A request the page's Content-Security-Policy refused never left the machine.
        if not request.url.startswith(local) and "csp" not in (request.failure or "").lower():
            outside.append(request.url)

    page.on("requestfinished", went_out)
    page.on("requestfailed", went_out)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.outside = outside
    page.errors = errors
    yield page
    page.close()


def operations(api: Any) -> set[tuple[str, str]]:  # noqa: F811
    spec = httpx.get(f"{api.url}/openapi.json", timeout=30).json()
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def test_swagger_ui_draws_every_operation_offline(offline_page, api) -> None:  # noqa: F811
    page = offline_page
    page.goto(f"{api.url}/docs")
    page.wait_for_selector(".opblock")
    drawn = {
        tuple(x)
        for x in page.eval_on_selector_all(
            ".opblock",
            """els => els.map(e => [
                 e.querySelector('.opblock-summary-method').innerText.trim(),
                 e.querySelector('.opblock-summary-path').dataset.path])""",
        )
    }
    assert drawn == operations(api)
    assert any(m == "GET" and p.endswith("/profile") for m, p in drawn)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-swagger-ui.png"))
    assert not page.outside, f"/docs reached outside the API: {page.outside}"
    assert not page.errors, page.errors


def test_redoc_draws_every_operation_offline(offline_page, api) -> None:  # noqa: F811
    page = offline_page
    page.goto(f"{api.url}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']")
    count = page.locator("[data-section-id^='operation/']").count()
    assert count == len(operations(api))
    assert not page.outside, f"/redoc reached outside the API: {page.outside}"


def test_docs_assets_are_served_by_name_only(api) -> None:  # noqa: F811
    ok = httpx.get(f"{api.url}/docs/assets/swagger-ui-bundle.js", timeout=30)
    assert ok.status_code == 200 and "SwaggerUIBundle" in ok.text[:2000]
    for bad in ("..%2F..%2Fpyproject.toml", "LICENSE", "core.py", "..%2Fcore.py"):
        resp = httpx.get(f"{api.url}/docs/assets/{bad}", timeout=30)
        assert resp.status_code == 404, (bad, resp.status_code)
