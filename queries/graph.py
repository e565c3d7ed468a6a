"""The Graph wrapper: one driver, reads and writes through ``execute_query``.

``Graph`` (sync) serves the services, the CLI and the loader. ``AsyncGraph`` serves the HTTP
API's own endpoints that never block a thread: readiness, the response cache's version check
and the read-only Cypher endpoint (``run_read_only``), whose safety rules live here too.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from .lazy import import_driver

import_driver()

import neo4j  # noqa: E402
import neo4j.graph  # noqa: E402
from neo4j import AsyncGraphDatabase, GraphDatabase, RoutingControl  # noqa: E402
from neo4j.exceptions import (  # noqa: E402
    AuthError,
    ClientError,
    ConnectionAcquisitionTimeoutError,
    DatabaseError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from .cache import AnswerCache, freeze, read_versions, stamp_of  # noqa: E402
from .errors import InvalidInput, TtpgraphError, Unavailable  # noqa: E402
from .settings import Settings, get_settings  # noqa: E402

T = TypeVar("T")


class QueryTimeout(TtpgraphError):
    """Neo4j aborted a query that ran past its transaction timeout."""

    status = 504
    title = "Query timed out"


class Forbidden(TtpgraphError):
    """A request the caller may not make (a write through the read-only Cypher endpoint)."""

    status = 403
    title = "Forbidden"


def driver_options(settings: Settings, *, pool_size: int | None, fail_fast: bool) -> dict[str, Any]:
    """Driver configuration. ``fail_fast`` (the API): a few seconds of retries when Neo4j is
    away instead of the driver's 30, so clients get a 503 while a load balancer still waits."""
    opts: dict[str, Any] = {
        "max_connection_pool_size": pool_size or settings.ttpgraph_max_pool_size,
        # ttpgraph's queries name labels that exist only once data of that kind is imported
        # (Inventory, OrgCluster, ThreatModel): no "label does not exist" warnings on stderr.
        "notifications_disabled_classifications": ["UNRECOGNIZED"],
    }
    if fail_fast:
        opts |= {
            "max_transaction_retry_time": settings.ttpgraph_api_retry_seconds,
            "connection_timeout": settings.ttpgraph_connect_timeout,
            "connection_acquisition_timeout": max(10.0, 2 * settings.ttpgraph_connect_timeout),
        }
    return opts


class Graph:
    """A thin wrapper over the official driver, bound to one database."""

    def __init__(self, driver: neo4j.Driver, database: str, *, timeout: float | None = None):
        self.driver = driver
        self.database = database
        self.timeout = timeout
        self.cache = AnswerCache()

    @classmethod
    def connect(
        cls,
        settings: Settings | None = None,
        *,
        pool_size: int | None = None,
        fail_fast: bool = False,
    ) -> Graph:
        s = settings or get_settings()
        driver = GraphDatabase.driver(
            s.neo4j_uri,
            auth=(s.neo4j_user, s.neo4j_password),
            **driver_options(s, pool_size=pool_size, fail_fast=fail_fast),
        )
        return cls(driver, s.neo4j_database, timeout=s.ttpgraph_query_timeout)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, text: str) -> Any:
        if self.timeout:
            return neo4j.Query(text, timeout=self.timeout)  # type: ignore[arg-type]
        return text

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read query; rows as dicts."""
        with neo4j_errors():
            records, _, _ = self.driver.execute_query(
                self._query(query), params, database_=self.database, routing_=RoutingControl.READ
            )
        return rows(records)

    def write(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run a write query (auto-retried on transient errors); rows as dicts."""
        with neo4j_errors():
            records, _, _ = self.driver.execute_query(
                self._query(query), params, database_=self.database, routing_=RoutingControl.WRITE
            )
        return rows(records)

    def cached(
        self,
        question: str,
        args: dict[str, Any],
        compute: Callable[[], T],
        *,
        scopes: Iterable[str] | None = None,
    ) -> T:
        """``compute()``'s answer, reused while the scopes it reads (``queries.cache``; None:
        everything) are unchanged. Answers are shared between callers: treat them as read-only.
        """
        if not self.cache.enabled:
            return compute()
        stamp = stamp_of(read_versions(self), scopes)
        return self.cache.get_or_compute(stamp, (question, freeze(args)), compute)

    def ping(self) -> None:
        with neo4j_errors():
            self.driver.verify_connectivity()


# Values Record.data() turns into dicts and lists; anything else comes out of dict(record) as is.
_GRAPH_TYPES = (neo4j.graph.Node, neo4j.graph.Relationship, neo4j.graph.Path)


def rows(records: list[neo4j.Record]) -> list[dict[str, Any]]:
    """Records as dicts. ``dict(record)`` costs a fraction of ``Record.data()`` (which walks
    every nested value); ``data()`` only for rows holding nodes, relationships or paths, which
    it turns into plain dicts and lists."""
    if not records:
        return []
    if any(
        isinstance(v, _GRAPH_TYPES)
        or (isinstance(v, list) and v and isinstance(v[0], _GRAPH_TYPES))
        for v in records[0].values()
    ):
        return [r.data() for r in records]
    return [dict(r) for r in records]


# ---------------------------------------------------------------- errors


TIMEOUT_CODES = (
    "Neo.ClientError.Transaction.TransactionTimedOut",  # ...ClientConfiguration as well
    "Neo.TransientError.Transaction.TransactionTimedOut",
)


@contextmanager
def neo4j_errors() -> Iterator[None]:
    """Map the driver's errors to domain errors: 503 when Neo4j is away or busy, 504 when a
    query ran past its transaction timeout. Other Neo4j errors pass through unchanged."""
    try:
        yield
    except AuthError as exc:
        raise Unavailable(f"Neo4j refused the credentials: {exc.message}") from exc
    except ConnectionAcquisitionTimeoutError as exc:
        raise Unavailable(f"every connection to Neo4j is busy: {exc}") from exc
    except (ServiceUnavailable, SessionExpired, OSError) as exc:
        raise Unavailable(f"Neo4j is not reachable: {exc}") from exc
    except (ClientError, TransientError, DatabaseError) as exc:
        code = exc.code or ""
        if code.startswith(TIMEOUT_CODES):
            raise QueryTimeout(
                "the query ran past its time limit and Neo4j stopped it; "
                "narrow it (filters, a smaller limit) or raise TTPGRAPH_QUERY_TIMEOUT"
            ) from exc
        if isinstance(exc, TransientError) or code.startswith(
            ("Neo.ClientError.Database.DatabaseNotFound", "Neo.TransientError")
        ):
            raise Unavailable(f"Neo4j cannot answer right now ({code}): {exc.message}") from exc
        raise


# Kept for modules written against the first version of this file.
_unavailable = neo4j_errors


# ---------------------------------------------------------------- async


class AsyncGraph:
    """The async driver, bound to one database: for endpoints that should never hold a thread."""

    def __init__(
        self, driver: neo4j.AsyncDriver, database: str, *, timeout: float | None = None
    ) -> None:
        self.driver = driver
        self.database = database
        self.timeout = timeout

    @classmethod
    def connect(
        cls,
        settings: Settings | None = None,
        *,
        pool_size: int | None = None,
        fail_fast: bool = True,
    ) -> AsyncGraph:
        s = settings or get_settings()
        driver = AsyncGraphDatabase.driver(
            s.neo4j_uri,
            auth=(s.neo4j_user, s.neo4j_password),
            **driver_options(s, pool_size=pool_size, fail_fast=fail_fast),
        )
        return cls(driver, s.neo4j_database, timeout=s.ttpgraph_query_timeout)

    async def close(self) -> None:
        await self.driver.close()

    async def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run a catalog read query; rows as dicts."""
        text: Any = neo4j.Query(query, timeout=self.timeout) if self.timeout else query  # type: ignore[arg-type]
        with neo4j_errors():
            records, _, _ = await self.driver.execute_query(
                text, params, database_=self.database, routing_=RoutingControl.READ
            )
        return rows(records)

    async def ping(self) -> None:
        with neo4j_errors():
            await self.driver.verify_connectivity()

    async def data_version(self) -> tuple[Any, Any] | None:
        """The graph's data version (bumped by every ttpgraph write), as cached answers use it."""
        from .catalog import Q

        rows = await self.read(Q.graph_version)
        return (rows[0]["value"], rows[0]["token"]) if rows else None

    async def run_read_only(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_rows: int,
        timeout: float,
        screen: bool = True,
    ) -> ReadOnlyResult:
        """Run a caller's Cypher in a READ transaction, at most ``max_rows`` rows, ``timeout`` s.

        Two locks, either enough for writes: Neo4j plans the query first (``EXPLAIN``) and it is
        refused unless Neo4j calls it read-only and it uses no operator on the deny-list
        (``screen_plan``); then it runs in a transaction opened with READ access mode, where
        Neo4j itself refuses any write. ``screen=False`` skips the first lock (tests use it to
        show the second holds alone).
        """
        params = check_params(params or {})
        t0 = time.perf_counter()
        with neo4j_errors(), user_cypher_errors():
            async with self.driver.session(
                database=self.database, default_access_mode=neo4j.READ_ACCESS
            ) as session:
                if screen:
                    plan = await session.run("EXPLAIN " + query, params)  # type: ignore[arg-type]
                    screen_plan(await plan.consume(), self.database)
                tx = await session.begin_transaction(
                    timeout=timeout, metadata={"app": "ttpgraph-cypher-endpoint"}
                )
                try:
                    result = await tx.run(query, params)  # type: ignore[arg-type]
                    keys = list(result.keys())
                    records = await result.fetch(max_rows + 1)
                finally:
                    # A read: rolling back ends it at once, without streaming the rest.
                    await tx.rollback()
        truncated = len(records) > max_rows
        return ReadOnlyResult(
            columns=keys,
            rows=[[to_json(v) for v in r.values()] for r in records[:max_rows]],
            truncated=truncated,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 2),
        )


# ---------------------------------------------------------------- read-only Cypher


@dataclass
class ReadOnlyResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float


# Procedures a read-only caller may CALL: the graph's own metadata and full-text search.
ALLOWED_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.schema.visualization",
        "db.schema.nodeTypeProperties",
        "db.schema.relTypeProperties",
        "db.index.fulltext.queryNodes",
        "db.index.fulltext.queryRelationships",
        "db.index.fulltext.listAvailableAnalyzers",
    }
)
# SHOW commands that only describe this database's schema and code.
ALLOWED_SHOW = frozenset({"ShowIndexes", "ShowConstraints", "ShowProcedures", "ShowFunctions"})
# Operators Neo4j lets run in a READ transaction that still read or change what they should not:
# files and URLs (LOAD CSV), other sessions' queries (SHOW/TERMINATE TRANSACTIONS), settings,
# and CALL {...} IN TRANSACTIONS (which commits on its own).
DENIED_OPERATORS = {
    "LoadCSV": "LOAD CSV reads files and URLs on the database server",
    "TerminateTransactions": "TERMINATE TRANSACTIONS stops other sessions' work",
    "TransactionApply": "CALL { ... } IN TRANSACTIONS commits on its own",
    "TransactionForeach": "CALL { ... } IN TRANSACTIONS commits on its own",
    "AdministrationCommand": "administration commands are not for this endpoint",
}


def screen_plan(summary: Any, database: str) -> None:
    """Refuse (``Forbidden``) a planned query that is not read-only in Neo4j's own terms, or
    that uses an operator or procedure outside the allow-lists above."""
    query_type = getattr(summary, "query_type", None)
    if query_type != "r":
        kind = {
            "rw": "reads and writes",
            "w": "writes",
            "s": "is a schema or administration command",
        }
        what = kind.get(query_type or "", "does not only read")
        raise Forbidden(
            f"query: Neo4j plans this query as one that {what} — this endpoint runs read-only "
            "queries"
        )
    for op, details, db in _plan_operators(getattr(summary, "plan", None)):
        if db and db != database:
            raise Forbidden(f"query: it runs against database {db!r}; only {database!r} is served")
        if op in DENIED_OPERATORS:
            raise Forbidden(f"query: {DENIED_OPERATORS[op]}")
        if op.startswith("Show") and op not in ALLOWED_SHOW:
            raise Forbidden(f"query: {op} is not served here (allowed: SHOW INDEXES, CONSTRAINTS, "
                            "PROCEDURES, FUNCTIONS)")  # fmt: skip
        if op.startswith(("Terminate", "Administration", "Transaction")):
            raise Forbidden(f"query: the {op} operator is not served here")
        if "ProcedureCall" in op:
            name = (details or "").split("(", 1)[0].strip()
            if name not in ALLOWED_PROCEDURES:
                raise Forbidden(
                    f"query: CALL {name or 'procedure'} is not allowed; allowed procedures: "
                    + ", ".join(sorted(ALLOWED_PROCEDURES))
                )


def _plan_operators(plan: Any) -> Iterator[tuple[str, str | None, str | None]]:
    """(operator, details, database) for every operator of an EXPLAIN plan."""
    stack = [plan] if plan else []
    while stack:
        node = stack.pop()
        raw = str(node.get("operatorType") or "")
        op, _, db = raw.partition("@")
        details = (node.get("args") or {}).get("Details")
        yield op, details if isinstance(details, str) else None, db or None
        stack.extend(node.get("children") or [])


_INT64 = (-(2**63), 2**63 - 1)
MAX_PARAM_DEPTH = 32


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as Neo4j takes them: names are identifiers, integers fit in 64 bits."""
    if not isinstance(params, Mapping):
        raise InvalidInput("params: must be a JSON object")
    for name in params:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput(f"params: {name!r} is not a parameter name (letters, digits, _)")

    stack: list[tuple[Any, str, int]] = [(v, f"params.{k}", 1) for k, v in params.items()]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_PARAM_DEPTH:
            raise InvalidInput(f"{where}: nested deeper than {MAX_PARAM_DEPTH} levels")
        if isinstance(value, bool) or value is None or isinstance(value, str | float):
            continue
        if isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise InvalidInput(f"{where}: integer {value} does not fit in 64 bits")
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, Mapping):
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in value.items())
        else:
            raise InvalidInput(f"{where}: not a JSON value")
    return dict(params)


@contextmanager
def user_cypher_errors() -> Iterator[None]:
    """A caller's Cypher that Neo4j rejects is the caller's error (4xx), named as Neo4j says."""
    try:
        yield
    except AuthError:
        raise  # the API's own credentials: Neo4j unavailable (503), not the caller's fault
    except (ClientError, DatabaseError, TransientError) as exc:
        code = exc.code or ""
        if code.startswith(TIMEOUT_CODES):
            raise
        if isinstance(exc, TransientError) and "OutOfMemory" not in code:
            raise
        message = (exc.message or str(exc)).strip().splitlines()[0] if exc.message else code
        if code == "Neo.ClientError.Statement.AccessMode":
            raise Forbidden(
                f"query: Neo4j refused a write in a read-only transaction ({message})"
            ) from exc
        if code.startswith("Neo.ClientError.Security."):
            raise Forbidden(f"query: {message}") from exc
        raise InvalidInput(f"query: {message} [{code}]") from exc


def to_json(value: Any) -> Any:
    """A Neo4j value as JSON: nodes, relationships and paths as objects, temporal values as
    ISO 8601 strings, points as {srid, x, y[, z]}, bytes as base64, non-finite floats as text."""
    from neo4j.graph import Node, Path, Relationship

    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Node):
        return {
            "element_id": value.element_id,
            "labels": sorted(value.labels),
            "properties": {k: to_json(v) for k, v in value.items()},
        }
    if isinstance(value, Relationship):
        return {
            "element_id": value.element_id,
            "type": value.type,
            "start": value.start_node.element_id if value.start_node else None,
            "end": value.end_node.element_id if value.end_node else None,
            "properties": {k: to_json(v) for k, v in value.items()},
        }
    if isinstance(value, Path):
        return {
            "nodes": [to_json(n) for n in value.nodes],
            "relationships": [to_json(r) for r in value.relationships],
        }
    if hasattr(value, "srid"):  # a spatial Point (a tuple of coordinates)
        out = {"srid": value.srid, "x": value[0], "y": value[1]}
        if len(value) > 2:
            out["z"] = value[2]
        return out
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return str(value)
