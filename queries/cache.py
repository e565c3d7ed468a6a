"""Answers that depend only on the graph's data, reused until the data they read changes.

ATT&CK changes twice a year and an organisation's imports change when someone imports; between
two writes every question has the same answer. Every ttpgraph write transaction bumps the one
``(:GraphVersion {key: 'ttpgraph'})`` node (``bump_graph_version``): its global counter (the
API's response cache keys on it) and the token of the **scope** it wrote — ``attack`` (a
release load), ``intel`` (the organisation's intelligence), ``inventory:<name>`` (one
inventory), ``threat_models``. A cached answer names the scopes it reads (an actor profile reads
``attack`` and ``intel``; a gap analysis also its inventory) and is reused while their tokens
are unchanged: importing an inventory leaves actor answers and other inventories' gaps cached.
A write that names no scope changes every scoped answer. One small query per call reads the
versions, so API workers, CLI processes and the loader never see each other's stale answers.

Only whole answers are cached (no parts shared between questions): a miss costs the version
read plus the uncached answer, never more.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

ATTACK = "attack"
INTEL = "intel"
THREAT_MODELS = "threat_models"
# What a write that names no scope changes: every scoped answer reads it too.
OTHER = "other"
# Scopes of the actor questions: ATT&CK, and the organisation's clusters that act as actors.
ACTOR_SCOPES = (ATTACK, INTEL)

BUMP_QUERY = (
    "MERGE (v:GraphVersion {key: 'ttpgraph'}) "
    "SET v.value = coalesce(v.value, 0) + 1, v.token = randomUUID(), "
    "v.changed_at = toString(datetime()), v[$scope] = randomUUID()"
)


def inventory_scope(name: str) -> str:
    return f"inventory:{name}"


def bump_graph_version(tx: Any, scope: str | None = None) -> None:
    """Call inside every write transaction that changes what questions answer, naming what it
    wrote (``attack``, ``intel``, ``inventory:<name>``, ``threat_models``)."""
    tx.run(BUMP_QUERY, scope="scope:" + (scope or OTHER)).consume()


def read_versions(graph: Any) -> dict[str, Any]:
    """The version node's properties (one small read); empty before the first write."""
    from .catalog import Q

    rows = graph.read(Q.graph_version)
    return (rows[0]["versions"] or {}) if rows else {}


def stamp_of(versions: dict[str, Any], scopes: Iterable[str] | None) -> Hashable:
    """What a cached answer reading ``scopes`` (None: everything) is valid for."""
    if scopes is None:
        return ("*", versions.get("value"), versions.get("token"))
    return tuple(versions.get("scope:" + s) for s in (*scopes, OTHER))


class AnswerCache:
    """A small LRU of answers keyed on (question, arguments), each kept with the versions of
    the scopes it read."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # TTPGRAPH_ANSWER_CACHE=0 turns it off (benchmarks measure both).
        self.enabled = os.environ.get("TTPGRAPH_ANSWER_CACHE", "1") != "0"

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def get_or_compute(self, stamp: Hashable, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry[0] == stamp:
                self._data.move_to_end(key)
                self.hits += 1
                return entry[1]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self.misses += 1
            self._data[key] = (stamp, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value


def freeze(value: Any) -> Hashable:
    """A hashable form of call arguments (lists, dicts and enums included)."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if hasattr(value, "model_dump"):  # a pydantic model (priority weights)
        return (type(value).__name__, freeze(value.model_dump()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [freeze(v) for v in value]
        return (
            tuple(sorted(items, key=repr)) if isinstance(value, (set, frozenset)) else tuple(items)
        )
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return freeze(value.value)
    return value  # type: ignore[no-any-return]


def cached_answer(
    fn: Callable[..., T] | None = None,
    *,
    scopes: Callable[[dict[str, Any]], Iterable[str]] | Iterable[str] | None = None,
) -> Any:
    """Decorate a service ``fn(graph, **kwargs)`` so its answer is reused while the scopes it
    reads are unchanged. ``scopes``: a list, or a function of the keyword arguments (a gap
    analysis reads its inventory's scope); None reads everything."""

    def decorate(f: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(f)
        def wrapper(graph: Any, **kwargs: Any) -> T:
            which = scopes(kwargs) if callable(scopes) else scopes
            return graph.cached(f.__qualname__, kwargs, lambda: f(graph, **kwargs), scopes=which)  # type: ignore[no-any-return]

        return wrapper

    return decorate(fn) if fn is not None else decorate
