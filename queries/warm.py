"""Plan the catalog before the first question.

Right after Neo4j starts, its first run of a query pays for planning (tens to hundreds of ms
per catalog query) and for the JVM compiling the planner and runtime, several times the
execution. Neo4j keeps a plan per query text *and* parameter shape (the type of each parameter
and the size bucket of lists: 0, 1, up to 10, up to 100...), and ``EXPLAIN`` fills a cache entry
of its own, so the catalog is warmed by *running* it: every catalog query once with its
``// example:`` parameters (all read queries), then the actor and coverage services with the
shapes they use (a name and an id, 3 and 5 actors, each inventory). ``ttpgraph neo4j start``
runs this in the background after a fresh start (``ttpgraph neo4j warm``), and the API before it
serves (``TTPGRAPH_WARM_UP``).

One warm-up at a time: the start-up warm-up holds a transaction tagged ``ttpgraph-warm-up`` open
while it runs (:func:`announced`), and an API starting meanwhile waits for it to end
(:func:`wait_for_warm_up`) rather than planning the same queries beside it and answering its
first questions on the two cores the warm-up takes.

Warm-up answers are never cached: the services run on a graph whose answer cache is off.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import neo4j

from .catalog import Q, code_only, load_catalog
from .errors import TtpgraphError
from .graph import Graph


@dataclass
class WarmReport:
    queries: int = 0
    services: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


def warm(
    graph: Graph,
    *,
    budget: float | None = None,
    services: bool = True,
    catalog: bool = True,
) -> WarmReport:
    """Run the services' common shapes (the questions asked first), then every catalog query,
    once each; at most ``budget`` seconds."""
    t0 = time.perf_counter()
    report = WarmReport()

    def out_of_time() -> bool:
        if budget is not None and time.perf_counter() - t0 > budget:
            report.stopped_early = True
        return report.stopped_early

    quiet = Graph(graph.driver, graph.database, timeout=graph.timeout)
    quiet.cache.enabled = False
    for name, call in service_shapes(quiet) if services else []:
        if out_of_time():
            break
        try:
            call()
            report.services += 1
        except (TtpgraphError, neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError):
            report.failed.append(name)
    for query in load_catalog().values() if catalog else []:
        if out_of_time():
            break
        try:
            graph.driver.execute_query(
                query.text,
                query.example or {},
                database_=graph.database,
                routing_=neo4j.RoutingControl.READ,
            )
            report.queries += 1
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError):
            report.failed.append(query.name)
    report.seconds = time.perf_counter() - t0
    return report


WARM_UP_APP = "ttpgraph-warm-up"


# ``x.key`` but not ``$param.key``, ``row.key`` (a batch's map) or ``db.procedure(``
_PROPERTY = re.compile(r"(\$?)\b([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\()")
_PROJECTED = re.compile(r"[{,]\s*\.([A-Za-z_]\w*)")  # map projections: n {.name, .aliases}
_LABEL_OR_TYPE = re.compile(r"[:|&]\s*([A-Z][A-Za-z0-9_]*)\b")
_NOT_TOKENS = {"CASE", "LIST", "STRING", "INTEGER", "FLOAT", "BOOLEAN", "MAP", "NODE", "ANY"}


def referenced_tokens(texts: Iterable[str]) -> tuple[set[str], set[str], set[str]]:
    """The labels, relationship types and property keys Cypher texts name (comments and string
    literals left out; a name in capitals is a type): what a plan made before they exist has
    to be made again for once they do."""
    labels: set[str] = set()
    types: set[str] = set()
    props: set[str] = set()
    for text in texts:
        code = code_only(text)
        for m in _PROPERTY.finditer(code):
            if not m.group(1) and m.group(2) != "row":
                props.add(m.group(3))
        props.update(_PROJECTED.findall(code))
        for name in _LABEL_OR_TYPE.findall(code):
            if name not in _NOT_TOKENS:
                (types if name.isupper() else labels).add(name)
    return labels, types, props


def create_tokens(graph: Graph, texts: Iterable[str]) -> None:
    """Create every label, relationship type and property key the texts name (the procedures
    create what is missing and leave the rest).

    Neo4j plans a query naming a property key or a label it does not know as "always null" or
    "always empty", and drops that plan when the first node carrying it is written: on an empty
    database, the first load replanned the catalog queries the start-up warm-up had planned (and
    its own statements), and the first inventory or intelligence import the queries about
    them. Tokens cost nothing and are never removed; a few that only name a map's key are
    created too."""
    labels, types, props = referenced_tokens(texts)
    for proc, names in (
        ("db.createLabel", labels),
        ("db.createRelationshipType", types),
        ("db.createProperty", props),
    ):
        if names:
            graph.write(f"UNWIND $names AS name CALL {proc}(name)", names=sorted(names))


@contextmanager
def announced(graph: Graph) -> Iterator[None]:
    """Hold a transaction tagged ``WARM_UP_APP`` open (it reads nothing, locks nothing) while
    the block runs: what :func:`wait_for_warm_up` looks for."""
    with graph.driver.session(database=graph.database) as session:
        tx = session.begin_transaction(metadata={"app": WARM_UP_APP})
        try:
            tx.run("RETURN 1").consume()  # the transaction exists on the server from here
            yield
        finally:
            tx.close()


def wait_for_warm_up(graph: Graph, *, budget: float, poll: float = 0.25) -> bool:
    """Wait while a start-up warm-up runs (another process's :func:`announced`), at most
    ``budget`` seconds. Whether one was running."""
    deadline = time.monotonic() + budget
    seen = False
    while True:
        try:
            running = graph.read(Q.warm_up_running, app=WARM_UP_APP)[0]["running"]
        except (TtpgraphError, neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError):
            return seen
        if not running or time.monotonic() >= deadline:
            return seen
        seen = True
        time.sleep(poll)


# The start-up warm-up, once it planned the whole catalog, writes the server start it planned
# for on the version node (no data: no answer's version changes); the version node, because
# it is the one node every ttpgraph graph has and every tool leaves alone.
CATALOG_PLANNED = (
    "CALL dbms.queryJmx('java.lang:type=Runtime') YIELD attributes "
    "MERGE (v:GraphVersion {key: 'ttpgraph'}) "
    "SET v.catalog_planned_for = attributes.StartTime.value"
)


def record_catalog_planned(graph: Graph) -> None:
    """Say in the graph that this server start's catalog is planned (``neo4j warm``)."""
    graph.write(CATALOG_PLANNED)


def catalog_planned(graph: Graph) -> bool:
    """Whether a start-up warm-up planned the whole catalog since the server last started (an
    API starting after it need not plan it again beside its first answers)."""
    try:
        rows = graph.read(Q.server_started)
    except (TtpgraphError, neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError):
        return False
    return (
        bool(rows)
        and rows[0]["started"] is not None
        and (rows[0]["catalog_planned_for"] == rows[0]["started"])
    )


_warmed: set[tuple[str, Any]] = set()


def warm_once(graph: Graph, **options: Any) -> WarmReport | None:
    """:func:`warm` unless this process already warmed this server since it started (an API
    worker's second app, a test session's). None when skipped or when Neo4j does not answer."""
    try:
        graph.ping()
        rows = graph.read(Q.server_started)
    except (TtpgraphError, neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError):
        return None
    key = (graph.database, rows[0]["started"] if rows else None)
    if key in _warmed:
        return None
    report = warm(graph, **options)
    if not report.stopped_early:
        _warmed.add(key)
    return report


def service_shapes(graph: Graph) -> list[tuple[str, Callable[[], Any]]]:
    """The calls whose parameter shapes the services send most: actors by name and by id, one,
    three and five of them, against each inventory (at most three)."""
    from . import actors, coverage

    row = graph.read(Q.warm_subjects)[0]
    groups, inventories = row["groups"], row["inventories"]
    if len(groups) < 5:
        return []
    names = [g["name"] for g in groups]
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("profile by name", lambda: actors.profile_group(graph, group=names[0])),
        ("profile by id", lambda: actors.profile_group(graph, group=groups[0]["id"])),
        ("compare", lambda: actors.compare_groups(graph, groups=names[:3])),
        ("similar", lambda: actors.similar_groups(graph, group=names[0])),
        ("search", lambda: actors.search_groups(graph, text=names[0])),
    ]
    for inv in inventories:
        for n in (1, 3, 5):
            calls.append((f"gaps {inv} {n}", functools.partial(
                coverage.gap_analysis, graph, actors=names[:n], inventory=inv
            )))  # fmt: skip
        calls.append((f"telemetry {inv}", functools.partial(
            coverage.prioritize_telemetry, graph, actors=names[:4], inventory=inv
        )))  # fmt: skip
    return calls
