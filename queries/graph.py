"""The Graph wrapper: one driver, reads and writes through ``execute_query``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import neo4j
from neo4j import GraphDatabase, RoutingControl
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired

from .cache import AnswerCache, freeze
from .errors import Unavailable
from .settings import Settings, get_settings

T = TypeVar("T")


class Graph:
    """A thin wrapper over the official driver, bound to one database."""

    def __init__(self, driver: neo4j.Driver, database: str, *, timeout: float | None = None):
        self.driver = driver
        self.database = database
        self.timeout = timeout
        self.cache = AnswerCache()

    @classmethod
    def connect(cls, settings: Settings | None = None) -> Graph:
        s = settings or get_settings()
        driver = GraphDatabase.driver(
            s.neo4j_uri,
            auth=(s.neo4j_user, s.neo4j_password),
            max_connection_pool_size=s.ttpgraph_max_pool_size,
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
        with _unavailable():
            records, _, _ = self.driver.execute_query(
                self._query(query), params, database_=self.database, routing_=RoutingControl.READ
            )
        return [r.data() for r in records]

    def write(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run a write query (auto-retried on transient errors); rows as dicts."""
        with _unavailable():
            records, _, _ = self.driver.execute_query(
                self._query(query), params, database_=self.database, routing_=RoutingControl.WRITE
            )
        return [r.data() for r in records]

    def cached(self, question: str, args: dict[str, Any], compute: Callable[[], T]) -> T:
        """``compute()``'s answer, reused until the graph's data version changes.

        Answers are shared between callers: treat them as read-only.
        """
        from .catalog import Q

        stamp = self.read(Q.graph_version)
        key = (question, freeze(args))
        return self.cache.get_or_compute(
            (stamp[0]["value"], stamp[0]["token"]) if stamp else None, key, compute
        )

    def ping(self) -> None:
        with _unavailable():
            self.driver.verify_connectivity()


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except AuthError as exc:
        raise Unavailable(f"Neo4j refused the credentials: {exc.message}") from exc
    except (ServiceUnavailable, SessionExpired, OSError) as exc:
        raise Unavailable(f"Neo4j is not reachable: {exc}") from exc
