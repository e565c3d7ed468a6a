"""What routes depend on, declared once: the process's graphs, pagination, and the response
cache every GET under /api/ goes through."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queries.actors import MAX_ACTORS
from queries.coverage import split_values
from queries.errors import InvalidInput
from queries.graph import AsyncGraph, Graph

T = TypeVar("T")


def model_response(model: Any) -> Response:
    """A service's pydantic answer as JSON, serialised once by pydantic's core: returned as is,
    FastAPI would validate the whole answer again (a large share of a big answer's time). The
    route declares the model as ``response_model`` for the OpenAPI schema."""
    return Response(model.model_dump_json(), media_type="application/json")


def data_response(data: Any) -> Response:
    """A service's JSON-ready answer (plain dicts and lists in its model's shape) as JSON, by
    orjson: a fifth of what validating it into the model and dumping that costs. The route
    declares the model as ``response_model`` for the OpenAPI schema."""
    return Response(orjson.dumps(data), media_type="application/json")


# The dependencies are ``async def``: they only read the request, and FastAPI runs a plain
# ``def`` dependency in the thread pool, a hop of its own before the route's (5 hops in an
# analysis request, ~0.5 ms of its fixed cost, before they were async).


async def get_graph(request: Request) -> Graph:
    return request.app.state.graph


async def get_async_graph(request: Request) -> AsyncGraph:
    return request.app.state.agraph


GraphDep = Annotated[Graph, Depends(get_graph)]
AsyncGraphDep = Annotated[AsyncGraph, Depends(get_async_graph)]


# ---------------------------------------------------------------- actor lists
#
# Every route that takes several actors takes them the same way: `actor` repeated
# (?actor=APT29&actor=FIN7) or comma-separated (?actor=APT29,FIN7), or both; NAME=WEIGHT where
# the route weighs actors. `actors` is the older spelling of two layer routes, still read.

ACTOR_HELP = (
    "ATT&CK id, name or alias (or an own cluster): repeat (actor=APT29&actor=FIN7) or "
    "comma-separate (actor=APT29,FIN7)"
)


async def actor_values(
    actor: Annotated[list[str] | None, Query(description=ACTOR_HELP)] = None,
    actors: Annotated[
        list[str] | None, Query(description="older spelling of actor", deprecated=True)
    ] = None,
) -> list[str]:
    """The actors of a request, split and in order; at most MAX_ACTORS."""
    values = split_values([*(actor or []), *(actors or [])])
    if len(values) > MAX_ACTORS:
        raise actor_error(f"at most {MAX_ACTORS} actors, got {len(values)}", "too_long")
    return values


def actor_error(message: str, kind: str) -> RequestValidationError:
    """A 422 like FastAPI's own, naming the field: detail 'query.actor: ...', errors[].loc."""
    return RequestValidationError([{"loc": ("query", "actor"), "msg": message, "type": kind}])


async def required_actors(values: Annotated[list[str], Depends(actor_values)]) -> list[str]:
    if not values:
        raise actor_error("give at least one actor (actor=APT29 or actor=APT29,FIN7)", "missing")
    return values


ActorList = Annotated[list[str], Depends(required_actors)]
OptionalActorList = Annotated[list[str], Depends(actor_values)]


# ---------------------------------------------------------------- pagination
#
# Keyset pagination: a list is in a fixed order of a unique key, and a cursor is the key of the
# last item returned (opaque: base64url JSON, bound to the path and filters). The next page
# starts strictly after that key, so pages never repeat or skip an item that exists throughout
# — even when the graph is reloaded between two pages, which offsets cannot promise.


CursorQuery = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="opaque cursor from the previous page's Link / X-Next-Cursor header",
    ),
]


def _scope_of(request: Request) -> str:
    params = sorted((k, v) for k, v in request.query_params.multi_items() if k not in ("cursor",
                    "limit"))  # fmt: skip
    raw = json.dumps([request.url.path, params]).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_cursor(after: Sequence[Any], scope: str) -> str:
    raw = json.dumps({"k": list(after), "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        after, where = data["k"], data["s"]
        if not isinstance(after, list):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput("cursor: not a cursor this API issued") from None
    if where != scope:
        raise InvalidInput("cursor: it was issued for another path or other filters") from None
    return after


def paginate(
    items: Sequence[T],
    *,
    key: Callable[[T], Sequence[Any]],
    limit: int,
    cursor: str | None,
    request: Request,
    response: Response,
    descending: bool = False,
) -> list[T]:
    """One page of ``items`` (any order; sorted here by ``key``, which must be unique, highest
    first with ``descending``), with ``Link: <...>; rel="next"`` and ``X-Next-Cursor`` when
    there is more."""
    scope = _scope_of(request)
    ordered = sorted(items, key=lambda i: list(key(i)), reverse=descending)
    if cursor:
        after = decode_cursor(cursor, scope)
        try:
            ordered = [
                i for i in ordered if (list(key(i)) < after if descending else list(key(i)) > after)
            ]
        except TypeError:
            raise InvalidInput("cursor: it does not fit this list") from None
    page = ordered[:limit]
    if len(ordered) > limit:
        nxt = encode_cursor(key(page[-1]), scope)
        url = request.url.include_query_params(cursor=nxt, limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
        response.headers["X-Next-Cursor"] = nxt
    return page


# ---------------------------------------------------------------- response cache


class VersionGate(Generic[T]):
    """The graph's data version for concurrent callers, one Bolt round trip per batch.

    Every caller gets a read that *started after it asked* (so a write committed before a
    request arrived is always seen), yet callers arriving while a read is in flight share the
    next one: at 32 concurrent requests a worker makes a handful of version reads, not 32.
    """

    def __init__(self, fetch: Callable[[], Awaitable[T]]) -> None:
        self._fetch = fetch
        self._next: asyncio.Future[T] | None = None
        self._task: asyncio.Task[None] | None = None

    async def get(self) -> T:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run())
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        while self._next is not None:
            fut, self._next = self._next, None  # later callers wait for the next read
            try:
                value = await self._fetch()
            except Exception as exc:  # noqa: BLE001 - handed to the waiters
                fut.set_exception(exc)
            else:
                fut.set_result(value)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


@dataclass
class Entry:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    gzipped: bytes | None = None  # the same body, gzip-compressed once, for clients that take it

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


GZIP_MIN_BYTES = 1024
_COMPRESSIBLE = (b"application/json", b"application/problem+json", b"text/", b"image/svg+xml")


def _gzip(entry: Entry) -> None:
    if len(entry.body) < GZIP_MIN_BYTES:
        return
    names = {k.lower(): v for k, v in entry.headers}
    if b"content-encoding" in names or not names.get(b"content-type", b"").startswith(
        _COMPRESSIBLE
    ):
        return
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip container
    entry.gzipped = packer.compress(entry.body) + packer.flush()


def _accepts_gzip(value: bytes | None) -> bool:
    if not value:
        return False
    for part in value.lower().split(b","):
        name, _, params = part.strip().partition(b";")
        if name.strip() in (b"gzip", b"*"):
            q = params.strip()
            return not (q.startswith(b"q=") and float(q[2:] or b"0") == 0)
    return False


class ResponseCache:
    """200 answers of GET requests, valid for one graph data version, LRU within a byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_entry = max(1, max_bytes // 8)
        self._data: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self._stamp: Any = object()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def _check(self, stamp: Any) -> None:
        if stamp != self._stamp:
            self._data.clear()
            self._bytes = 0
            self._stamp = stamp

    def get(self, stamp: Any, key: tuple[Any, ...]) -> Entry | None:
        self._check(stamp)
        entry = self._data.get(key)
        if entry is not None:
            self._data.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return entry

    def put(self, stamp: Any, key: tuple[Any, ...], entry: Entry) -> None:
        self._check(stamp)
        if entry.size > self.max_entry:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._data[key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes and self._data:
            _, dropped = self._data.popitem(last=False)
            self._bytes -= dropped.size


_NOT_STORED = (b"content-length", b"etag", b"cache-control", b"x-cache", b"date", b"server")


class ResponseCacheMiddleware:
    """Pure ASGI: a GET under /api/ is answered from the cache when the graph's data version is
    the one the answer was computed for. Every answer that goes through here gets an ETag (a
    hash of its body) and ``Cache-Control: private, no-cache``, and ``If-None-Match`` gets a
    304. A route opts out with ``Cache-Control: no-store``. If the version cannot be read
    (Neo4j away) the request goes to the app, which answers for itself (503)."""

    def __init__(self, app: ASGIApp, *, enabled: bool, max_mb: int) -> None:
        self.app = app
        self.enabled = enabled
        self.cache = ResponseCache(max_mb * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        gate: VersionGate[Any] | None = getattr(scope["app"].state, "version_gate", None)
        if gate is None:
            await self.app(scope, receive, send)
            return
        try:
            stamp = await gate.get()
        except Exception:  # noqa: BLE001 - the app reports Neo4j's state itself
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        key = (scope["path"], scope.get("query_string", b""), headers.get(b"accept", b""))
        inm = headers.get(b"if-none-match")
        gzip_ok = _accepts_gzip(headers.get(b"accept-encoding"))
        entry = self.cache.get(stamp, key)
        if entry is not None:
            await _answer(send, entry, inm, gzip_ok, b"hit")
            return

        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passthrough = False

        async def capture(message: Message) -> None:
            nonlocal start, size, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:
                    passthrough = True
                    await send(message)
                return
            if message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if message.get("more_body") and size > self.cache.max_entry:
                    # Too big to keep: stream the rest as it comes.
                    passthrough = True
                    await send(start)
                    await send({"type": "http.response.body", "body": b"".join(chunks),
                                "more_body": True})  # fmt: skip
                    return
                if not message.get("more_body"):
                    await self._finish(send, stamp, key, start, b"".join(chunks), inm, gzip_ok)
                return
            await send(message)

        await self.app(scope, receive, capture)

    async def _finish(
        self,
        send: Send,
        stamp: Any,
        key: tuple[Any, ...],
        start: Message,
        body: bytes,
        inm: bytes | None,
        gzip_ok: bool,
    ) -> None:
        raw = list(start.get("headers") or [])
        names = {k.lower() for k, _ in raw}
        cc = b"".join(v for k, v in raw if k.lower() == b"cache-control").lower()
        etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
        entry = Entry([(k, v) for k, v in raw if k.lower() not in _NOT_STORED], body, etag)
        if b"no-store" in cc or b"set-cookie" in names:
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        if len(body) > 256 * 1024:
            await asyncio.to_thread(_gzip, entry)  # a few ms of CPU: off the event loop
        else:
            _gzip(entry)
        self.cache.put(stamp, key, entry)
        await _answer(send, entry, inm, gzip_ok, b"miss")


def _etag_matches(inm: bytes | None, etag: bytes) -> bool:
    if not inm:
        return False
    tags = [t.strip().removeprefix(b"W/") for t in inm.split(b",")]
    return b"*" in tags or etag in tags


async def _answer(send: Send, entry: Entry, inm: bytes | None, gzip_ok: bool, how: bytes) -> None:
    gz = gzip_ok and entry.gzipped is not None
    # Two representations, two strong ETags.
    etag = entry.etag[:-1] + b'-gz"' if gz else entry.etag
    common = [
        (b"etag", etag),
        (b"cache-control", b"private, no-cache"),
        (b"x-cache", how),
    ]
    if entry.gzipped is not None:
        common.append((b"vary", b"Accept-Encoding"))
    if _etag_matches(inm, etag):
        await send({"type": "http.response.start", "status": 304, "headers": common})
        await send({"type": "http.response.body", "body": b""})
        return
    body = entry.gzipped if gz and entry.gzipped is not None else entry.body
    headers = [*entry.headers, (b"content-length", str(len(body)).encode()), *common]
    if gz:
        headers.append((b"content-encoding", b"gzip"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
