"""The Graph wrapper: one driver, reads and writes through ``execute_query``.

``Graph`` (sync) serves the services, the CLI and the loader. ``AsyncGraph`` serves the HTTP
API's own endpoints that never block a thread: readiness, the response cache's version check
and the read-only Cypher endpoint (whose rules live in ``queries.user_cypher``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import neo4j
import neo4j.graph
from neo4j import AsyncGraphDatabase, GraphDatabase, RoutingControl
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConnectionAcquisitionTimeoutError,
    DatabaseError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from .cache import AnswerCache, freeze, read_versions, stamp_of
from .errors import TtpgraphError, Unavailable
from .settings import Settings, get_settings

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
        raise Unavailable("Neo4j refused the credentials", private=exc.message) from exc
    except ConnectionAcquisitionTimeoutError as exc:
        raise Unavailable("every connection to Neo4j is busy", private=str(exc)) from exc
    except (ServiceUnavailable, SessionExpired, OSError) as exc:
        raise Unavailable("Neo4j is not reachable", private=str(exc)) from exc
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
            raise Unavailable(
                f"Neo4j cannot answer right now ({code})", private=exc.message
            ) from exc
        raise


def domain_error(exc: Exception) -> TtpgraphError | None:
    """The domain error a driver error maps to (503, 504), or None when it is not one
    ``neo4j_errors`` knows."""
    try:
        with neo4j_errors():
            raise exc
    except TtpgraphError as mapped:
        return mapped
    except Exception:  # noqa: BLE001 - not one neo4j_errors knows
        return None


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
