"""Answers that depend only on the graph's data, reused until the data changes.

ATT&CK changes twice a year and an organisation's imports change when someone imports; between
two writes every question has the same answer. Every ttpgraph write transaction bumps one
``(:GraphVersion {key: 'ttpgraph'})`` counter (``bump_graph_version``), and a cached answer is
reused only while that counter is unchanged — checked with one small query per call, so API
workers, CLI processes and the loader never see each other's stale answers.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

BUMP_QUERY = (
    "MERGE (v:GraphVersion {key: 'ttpgraph'}) "
    "SET v.value = coalesce(v.value, 0) + 1, v.token = randomUUID(), "
    "v.changed_at = toString(datetime())"
)


def bump_graph_version(tx: Any) -> None:
    """Call inside every write transaction that changes what questions answer."""
    tx.run(BUMP_QUERY).consume()


class AnswerCache:
    """A small LRU of answers keyed on (question, arguments), valid for one graph version."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._stamp: Any = object()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # TTPGRAPH_ANSWER_CACHE=0 turns it off (benchmarks measure both).
        self.enabled = os.environ.get("TTPGRAPH_ANSWER_CACHE", "1") != "0"

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def get_or_compute(self, stamp: Any, key: Hashable, compute: Callable[[], T]) -> T:
        if not self.enabled:
            return compute()
        with self._lock:
            if stamp != self._stamp:
                self._data.clear()
                self._stamp = stamp
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            if stamp == self._stamp:
                self.misses += 1
                self._data[key] = value
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
        return value


def freeze(value: Any) -> Hashable:
    """A hashable form of call arguments (lists, dicts and enums included)."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [freeze(v) for v in value]
        return (
            tuple(sorted(items, key=repr)) if isinstance(value, (set, frozenset)) else tuple(items)
        )
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return freeze(value.value)
    return value  # type: ignore[no-any-return]


def graph_stamp(graph: Any) -> Any:
    """The graph's data version (one small read): cached answers are valid while it is
    unchanged."""
    from .catalog import Q

    rows = graph.read(Q.graph_version)
    return (rows[0]["value"], rows[0]["token"]) if rows else None


def memo(graph: Any, stamp: Any, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, reused by every caller at the same graph version (read-only!)."""
    return graph.cache.get_or_compute(stamp, key, compute)  # type: ignore[no-any-return]


def cached_answer(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate a service ``fn(graph, **kwargs)`` so its answer is reused per graph version."""

    @functools.wraps(fn)
    def wrapper(graph: Any, **kwargs: Any) -> T:
        return graph.cached(fn.__qualname__, kwargs, lambda: fn(graph, **kwargs))  # type: ignore[no-any-return]

    return wrapper


def cached_service(fn: Callable[..., T]) -> Callable[..., T]:
    """Like :func:`cached_answer` for a service ``fn(graph, *, stamp, **kwargs)`` that also
    memoises parts of its work (with :func:`memo`) under the same graph version."""

    @functools.wraps(fn)
    def wrapper(graph: Any, **kwargs: Any) -> T:
        stamp = graph_stamp(graph)
        key = (fn.__qualname__, freeze(kwargs))
        return memo(graph, stamp, key, lambda: fn(graph, stamp=stamp, **kwargs))

    return wrapper
