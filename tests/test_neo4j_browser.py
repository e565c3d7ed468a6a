"""Neo4j Browser as the README uses it, against the session's real server (started by
ttpgraph's own neo4j.conf) and the real API: the Browser URL that `up` prints fills in the
connect form, the server lets Browser fetch the style sheet from 127.0.0.1 (its remote-content
allowlist, read back from the server), and the API answers Browser's CORS preflight for it.

Chromium as in tests/test_ui.py (skipped without it, except in CI).
"""

from __future__ import annotations

import httpx

from loader import neo4j_server as srv
from queries.graph import Graph

from .conftest import REPO
from .test_ui import TIMEOUT_MS, api, browser_context  # noqa: F401 - fixtures


def test_browser_url_fills_in_the_connect_form(browser_context, neo4j_server) -> None:  # noqa: F811
    cfg: srv.ServerConfig = neo4j_server
    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(cfg.browser_connect_url)
        page.wait_for_selector("[data-testid=boltaddress]")
        assert page.input_value("[data-testid=boltaddress]") == f"127.0.0.1:{cfg.bolt_port}"
        assert page.input_value("[data-testid=username]") == "neo4j"
        assert page.input_value("[data-testid=password]") == ""  # never in a URL
        assert page.input_value("[data-testid=authenticationMethod]") == "NATIVE"
    finally:
        page.close()


def test_server_lets_browser_fetch_from_this_machine(graph: Graph) -> None:
    config = {r["name"]: r["value"] for r in graph.read("CALL dbms.clientConfig()")}
    allowed = config["browser.remote_content_hostname_whitelist"].split(",")
    assert {"localhost", "127.0.0.1"} <= set(allowed)  # :style http://127.0.0.1:8000/...
    assert "guides.neo4j.com" not in allowed  # nothing from elsewhere


def test_style_sheet_answers_browsers_preflight(api) -> None:  # noqa: F811
    url = f"{api.url}/ui/ttpgraph.grass"
    pre = httpx.options(
        url,
        headers={
            "Origin": "http://localhost:7474",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )
    assert pre.status_code == 204, pre.text
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "GET" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "content-type"
    got = httpx.get(url, headers={"Origin": "http://127.0.0.1:7474"}, timeout=30)
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "*"
    assert got.text == (REPO / "queries" / "browser" / "ttpgraph.grass").read_text("utf-8")
