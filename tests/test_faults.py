"""Faults, for real, on a throw-away Neo4j of this module's own: the server is SIGKILLed in the
middle of the Enterprise 18.1 load transaction, restarted, the load re-run; and malformed
bundles made from real objects go through a real load. Nothing half-written, no duplicate."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from neo4j import GraphDatabase

from loader import neo4j_server as srv
from loader.load import Progress, load_file
from loader.stix import BundleError
from queries.errors import Unavailable
from queries.graph import Graph
from queries.settings import Settings

from .bundle_facts import expected_counts
from .conftest import ENTERPRISE, ENTERPRISE_17, ICS_21, throwaway_server
from .test_releases import (
    assert_same_graph,
    attack_fingerprint,
    duplicates,
    release_counts,
    reset,
)

pytestmark = pytest.mark.slow


def connect(s: Settings) -> Graph:
    # Short retries: once the server is dead, the load should give up quickly, not for 30 s.
    driver = GraphDatabase.driver(
        s.neo4j_uri, auth=(s.neo4j_user, s.neo4j_password), max_transaction_retry_time=1.0
    )
    return Graph(driver, s.neo4j_database)


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[srv.ServerConfig, Settings]]:
    with throwaway_server(tmp_path_factory.mktemp("neo4j-faults")) as server:
        yield server


class KillMidway(Progress):
    """Progress that, once ``fraction`` of the rows are written inside the open transaction,
    signals ``reached`` and waits until the server has been killed."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.total = 0
        self.done_rows = 0
        self.reached = threading.Event()
        self.killed = threading.Event()

    def start(self, label: str, total: int) -> None:
        self.total = total

    def advance(self, n: int) -> None:
        self.done_rows += n
        if not self.reached.is_set() and self.done_rows >= self.fraction * self.total:
            self.reached.set()
            self.killed.wait(120)


def test_kill_neo4j_mid_load_then_restart_and_reload(
    own: tuple[srv.ServerConfig, Settings],
) -> None:
    cfg, s = own
    g = connect(s)
    reset(g)
    load_file(g, str(ENTERPRISE))
    clean_18 = attack_fingerprint(g)
    reset(g)
    load_file(g, str(ENTERPRISE_17))
    before = attack_fingerprint(g)
    release_before = g.read("MATCH (r:Release) RETURN r.version AS v, r.loaded_at AS t")

    progress = KillMidway(0.4)
    outcome: dict[str, Any] = {}

    def run_load() -> None:
        try:
            outcome["result"] = load_file(g, str(ENTERPRISE), progress=progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    loader = threading.Thread(target=run_load, daemon=True)
    loader.start()
    assert progress.reached.wait(300), "the load never got under way"
    assert 0 < progress.done_rows < progress.total
    srv.kill(cfg)  # SIGKILL, with the write transaction open and half its rows sent
    progress.killed.set()
    loader.join(300)
    assert not loader.is_alive()
    err = outcome.get("error")
    assert isinstance(err, Unavailable), f"expected a clear Unavailable, got {err!r}"
    assert "nothing of it was written" in err.detail and "\n" not in err.detail
    g.close()

    srv.start(cfg, timeout=180)
    g = connect(s)
    try:
        # Recovery rolled the killed transaction back: the graph is 17.1 exactly.
        assert_same_graph(attack_fingerprint(g), before)
        assert g.read("MATCH (r:Release) RETURN r.version AS v, r.loaded_at AS t") == (
            release_before
        )
        load_file(g, str(ENTERPRISE))
        assert_same_graph(attack_fingerprint(g), clean_18)
        assert duplicates(g) == 0
        assert release_counts(g, "enterprise-attack") == expected_counts(ENTERPRISE)
    finally:
        g.close()


# ----------------------------------------------------- malformed bundles through a real load

ICS_OBJECTS: list[dict[str, Any]] = json.loads(ICS_21.read_text(encoding="utf-8"))["objects"]
_NODES = [i for i, o in enumerate(ICS_OBJECTS) if o["type"] in ("attack-pattern", "intrusion-set")]
_RELS = [i for i, o in enumerate(ICS_OBJECTS) if o["type"] == "relationship"]


def _broken(kind: str, pick: int) -> list[dict[str, Any]]:
    """A copy of ICS 18.1 with one real object broken in a way a load must refuse."""
    objs = copy.deepcopy(ICS_OBJECTS)
    if kind == "dangling":
        objs[_RELS[pick % len(_RELS)]]["target_ref"] = (
            "attack-pattern--00000000-0000-4000-8000-00000000dead"
        )
    elif kind == "name-type":
        objs[_NODES[pick % len(_NODES)]]["name"] = [1, 2]
    elif kind == "no-id":
        del objs[_NODES[pick % len(_NODES)]]["id"]
    elif kind == "bad-flag":
        objs[_NODES[pick % len(_NODES)]]["revoked"] = "yes"
    elif kind == "bad-date":
        objs[_RELS[pick % len(_RELS)]]["modified"] = {"nested": {"deep": [1]}}
    return objs


def ics_only(g: Graph) -> None:
    """The graph holding ICS 18.1 alone (small: quick to fingerprint)."""
    domains = g.read("MATCH (r:Release) RETURN collect(r.domain) AS d")[0]["d"]
    if domains != ["ics-attack"]:
        reset(g)
        load_file(g, str(ICS_21))


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["dangling", "name-type", "no-id", "bad-flag", "bad-date"]),
    pick=st.integers(min_value=0, max_value=10_000),
)
def test_malformed_bundles_write_nothing(
    own: tuple[srv.ServerConfig, Settings], tmp_path_factory: pytest.TempPathFactory,
    kind: str, pick: int,
) -> None:  # fmt: skip
    g = connect(own[1])
    try:
        ics_only(g)
        before = attack_fingerprint(g)
        path = tmp_path_factory.mktemp("bad") / "ics-attack-18.1.json"
        path.write_text(
            json.dumps({"type": "bundle", "id": "bundle--x", "objects": _broken(kind, pick)})
        )
        with pytest.raises(BundleError) as info:
            load_file(g, str(path))
        assert "\n" not in str(info.value) and str(path.resolve()) in str(info.value)
        after = attack_fingerprint(g)
        assert after[0] == before[0] and after[1] == before[1]
    finally:
        g.close()


def test_fingerprint_sees_a_write(own: tuple[srv.ServerConfig, Settings]) -> None:
    """The comparison above can fail: one changed property shows."""
    g = connect(own[1])
    try:
        ics_only(g)
        before = attack_fingerprint(g)
        g.write("MATCH (t:Technique) WITH t LIMIT 1 SET t.name = t.name + ' (changed)'")
        after = attack_fingerprint(g)
        assert after[0] != before[0]
        assert Counter(after[1]) == Counter(before[1])
        load_file(g, str(ICS_21))
        assert attack_fingerprint(g)[0] == before[0]
    finally:
        g.close()
