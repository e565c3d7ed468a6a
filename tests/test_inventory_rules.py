"""Listing an inventory's rules, from the CLI (``inventory show NAME --rules``) and the API
(``GET /api/v1/inventories/{name}/rules``), for the Sigma inventory the repository ships in
``examples/soc/``.

What each rule should list is computed here from the rule files themselves (YAML tags) and the
bundle JSON (revoked -> replacement), never from the importer's output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from loader.inventory.importer import delete_inventory, import_inventory
from queries.graph import Graph
from queries.settings import Settings

from .conftest import REPO
from .test_cli import run_cli
from .test_inventory_import import follow

SOC = REPO / "examples" / "soc"
NAME = "t-rules-soc"
TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)
SIGMA_STATUS = {"stable": "active", "test": "test", "experimental": "experimental"}


def expected_rules() -> dict[str, dict[str, Any]]:
    """Rule id -> name, status, ids as tagged, what each covers (id -> via), unknown ids."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(SOC.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        ids = [m.group(1).upper() for t in doc.get("tags", []) if (m := TAG.match(t))]
        covers: dict[str, str] = {}
        unknown: list[str] = []
        for tid in ids:
            target = follow(tid)
            if target is None:
                unknown.append(tid)
            else:
                covers[target] = "tag" if target == tid else "revoked"
        out[doc["id"]] = {
            "name": doc["title"],
            "file": path.name,
            "raw_status": doc["status"],
            "techniques": ids,
            "covers": covers,
            "unknown": unknown,
        }
    return out


def test_the_example_inventory_exercises_each_case() -> None:
    rules = expected_rules()
    assert len(rules) == len(list(SOC.glob("*.yml"))) >= 6
    vias = {v for r in rules.values() for v in r["covers"].values()}
    assert vias == {"tag", "revoked"}  # a revoked id (T1193) resolves to its replacement
    assert any(r["unknown"] for r in rules.values())  # an id the release does not know
    assert any(r["raw_status"] == "deprecated" for r in rules.values())


@pytest.fixture(scope="module")
def soc(graph: Graph) -> Iterator[str]:
    import_inventory(graph, "sigma", SOC, name=NAME)
    yield NAME
    delete_inventory(graph, NAME)


def check_listing(listed: list[dict[str, Any]]) -> None:
    expected = expected_rules()
    assert {r["rule_id"] for r in listed} == set(expected)
    for r in listed:
        want = expected[r["rule_id"]]
        assert r["name"] == want["name"]
        assert Path(r["file"]).name == want["file"]
        assert sorted(r["techniques"]) == sorted(want["techniques"])
        assert sorted(r["unknown_ids"]) == sorted(want["unknown"])
        assert {c["technique_id"]: c["via"] for c in r["covers"]} == want["covers"]
        for c in r["covers"]:
            assert c["tag"] in want["techniques"]
        if want["raw_status"] in SIGMA_STATUS:
            assert r["status"] == SIGMA_STATUS[want["raw_status"]]
        if want["raw_status"] == "deprecated":
            assert r["status"] == "deprecated"


def test_cli_lists_the_rules(soc: str, settings: Settings) -> None:
    proc = run_cli(settings, "inventory", "show", soc, "--rules", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    check_listing(json.loads(proc.stdout))

    table = run_cli(settings, "inventory", "show", soc, "--rules")
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stderr
    for rule in expected_rules().values():
        assert rule["name"].split()[0] in table.stdout

    one = run_cli(
        settings, "inventory", "show", soc, "--technique", "T1566.001", "--format", "json"
    )
    assert one.returncode == 0, one.stderr
    want = {k for k, r in expected_rules().items() if "T1566.001" in r["covers"]}
    assert (
        {r["rule_id"] for r in json.loads(one.stdout)}
        == want
        == {"6f0c6a8e-1d2b-4a57-9a55-2b8e1c0d7a02"}
    )


def test_api_lists_the_rules(soc: str, settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"ttpgraph_api_auth": False}))) as c:
        resp = c.get(f"/api/v1/inventories/{soc}/rules")
        assert resp.status_code == 200, resp.text
        check_listing(resp.json())
        deprecated = c.get(f"/api/v1/inventories/{soc}/rules", params={"status": "deprecated"})
        assert deprecated.status_code == 200, deprecated.text
        assert [r["file"].rsplit("/", 1)[-1] for r in deprecated.json()] == [
            name
            for name, r in ((r["file"], r) for r in expected_rules().values())
            if r["raw_status"] == "deprecated"
        ]


def test_cli_rules_of_an_unknown_inventory(graph: Graph, settings: Settings) -> None:
    proc = run_cli(settings, "inventory", "show", "no-such-inventory", "--rules")
    assert proc.returncode == 1
    assert "no-such-inventory" in proc.stderr and "Traceback" not in proc.stderr
