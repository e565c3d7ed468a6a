"""``POST /api/v1/cypher`` runs in a child process of each API worker, not in the worker.

Why: a caller's query decides how big one record is, and the driver decodes a record whole —
``RETURN range(1, 20000000)`` or a ``collect()`` of ten million values is one record of 100+ MB
that held the worker's event loop for seconds and grew it by gigabytes. In the child, that work
cannot stall the worker's event loop (``/health`` and every other route keep answering), the
child's memory is capped (``TTPGRAPH_CYPHER_RUNNER_MB``, an ``RLIMIT_DATA``: past it the request
gets a 422, not the worker an OOM kill), and the child has its own small connection pool, so
Cypher callers never take the connections the other routes need.

Deadlines: the child ends every request at its timeout + ``CHILD_GRACE`` seconds (504) and asks
Neo4j to terminate its transaction; if the child itself does not answer by timeout +
``PARENT_GRACE`` after the request arrived (its event loop stuck decoding), the worker answers
504, kills the child (closing its connections) and starts a new one at once, so the next
request does not wait for a Python start-up. A child says when it is ready; one still starting
when a request's time is up is left to finish starting (the request gets a 503 with
Retry-After), never killed for it.

Concurrency: before a request runs, the child counts the endpoint's transactions Neo4j still
holds (every worker and replica, and those Neo4j was told to stop but still runs) plus its own
requests not yet visible there: past ``TTPGRAPH_CYPHER_PER_KEY`` for the caller's key, or
``TTPGRAPH_CYPHER_MAX_CONCURRENT`` in all, the answer is 429 with ``Retry-After``.

The protocol is frames on the child's stdin/stdout: a 4-byte length and a JSON header, then a
4-byte length and a body (the answer's JSON, already encoded).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from neo4j.exceptions import Neo4jError

from queries import user_cypher
from queries.errors import Busy, InvalidInput, NotFound, TtpgraphError, Unavailable
from queries.graph import AsyncGraph, Forbidden, QueryTimeout
from queries.settings import Settings

log = logging.getLogger("ttpgraph.api")

CHILD_GRACE = 0.5
PARENT_GRACE = 1.0
_LEN = struct.Struct(">I")
# Errors that cross the pipe by name; anything else is a 500 (logged by the child).
ERRORS: dict[str, type[TtpgraphError]] = {
    cls.__name__: cls
    for cls in (
        InvalidInput,
        NotFound,
        Forbidden,
        QueryTimeout,
        Unavailable,
        Busy,
        user_cypher.AnswerTooLarge,
    )
}


async def _write_frame(writer: asyncio.StreamWriter, header: dict[str, Any], body: bytes) -> None:
    raw = json.dumps(header).encode()
    writer.write(_LEN.pack(len(raw)) + raw + _LEN.pack(len(body)) + body)
    await writer.drain()


async def _read_frame(reader: asyncio.StreamReader, max_body: int) -> tuple[dict[str, Any], bytes]:
    (n,) = _LEN.unpack(await reader.readexactly(4))
    header = json.loads(await reader.readexactly(n))
    (m,) = _LEN.unpack(await reader.readexactly(4))
    if m > max_body:
        raise ValueError(f"frame body of {m} bytes is past {max_body}")
    return header, await reader.readexactly(m)


# ---------------------------------------------------------------- the worker's side


class CypherRunner:
    """The worker's handle on its child: started on first use, restarted when it dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.max_bytes = int(settings.ttpgraph_cypher_max_mb * 1024 * 1024)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._starting: asyncio.Task[Any] | None = None
        self._ready: dict[int, asyncio.Event] = {}  # pid -> set when that child serves
        self._closing = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    def start_soon(self) -> None:
        """Start the child in the background (a Python start-up, off the first request's time)."""
        task = asyncio.create_task(self._ensure())
        task.add_done_callback(_retrieve)
        self._starting = task

    async def _ensure(self) -> asyncio.subprocess.Process:
        async with self._lock:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            root = str(Path(__file__).resolve().parent.parent)  # this checkout's code
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "api.cypher_runner",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            )  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            await _write_frame(proc.stdin, {"settings": self.settings.model_dump(mode="json")}, b"")
            self._ready[proc.pid] = asyncio.Event()
            self._proc = proc
            self._reader_task = asyncio.create_task(self._read(proc))
            return proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                header, body = await _read_frame(proc.stdout, self.max_bytes + 65536)
                if header.get("ready"):
                    if (ready := self._ready.get(proc.pid)) is not None:
                        ready.set()
                    continue
                fut = self._pending.pop(int(header.get("id", 0)), None)
                if fut is not None and not fut.done():
                    fut.set_result((header, body))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            if not isinstance(exc, asyncio.IncompleteReadError):
                log.error("the Cypher runner sent a bad frame: %s", exc)
            self._fail_pending(proc)

    def _fail_pending(self, proc: asyncio.subprocess.Process) -> None:
        self._ready.pop(proc.pid, None)
        if self._proc is proc:
            self._proc = None
            if not self._closing:
                self.start_soon()  # its successor starts now, not on the next request's time
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(Unavailable("the Cypher runner stopped; retry the request"))
        self._pending.clear()

    async def run(
        self,
        *,
        query: str,
        params: dict[str, Any],
        max_rows: int,
        owner: str,
        arrived: float | None = None,
    ) -> bytes:
        """The answer's JSON, or the domain error the child raised. ``arrived``: when the
        request arrived (``time.monotonic()``); the deadline counts from then."""
        timeout = self.settings.ttpgraph_cypher_timeout
        loop = asyncio.get_running_loop()
        # The deadline on the event loop's clock, counted from arrival (a start-up included).
        deadline = loop.time() + timeout + PARENT_GRACE
        if arrived is not None:
            deadline -= max(0.0, time.monotonic() - arrived)
        try:
            async with asyncio.timeout_at(deadline):
                proc = await self._ensure()
                await self._ready[proc.pid].wait()
        except (TimeoutError, KeyError):  # KeyError: it died while starting
            starting = Unavailable("the Cypher runner is starting; retry the request")
            starting.retry_after = 1  # type: ignore[attr-defined]
            raise starting from None
        assert proc.stdin is not None
        rid = next(self._ids)
        fut: asyncio.Future[tuple[dict[str, Any], bytes]] = loop.create_future()
        self._pending[rid] = fut
        request = {"id": rid, "query": query, "params": params, "max_rows": max_rows,
                   "owner": owner}  # fmt: skip
        timed_out = QueryTimeout(
            f"the query ran past the {timeout:g} s limit (TTPGRAPH_CYPHER_TIMEOUT) and was "
            "stopped; narrow it (filters, a smaller limit)"
        )
        try:
            await _write_frame(proc.stdin, request, b"")
            header, body = await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
        except (TimeoutError, ConnectionError):
            # The child missed its own deadline: its event loop is stuck. Kill it (its
            # connections close, Neo4j ends their transactions); a new one starts at once.
            if self._proc is proc:  # the first request to notice says it, once
                log.error("the Cypher runner missed a deadline; restarting it")
            self._pending.pop(rid, None)
            self._fail_pending(proc)
            raise timed_out from None
        except Unavailable:
            # The runner was stopped under it (another request missed its deadline): a query
            # whose own time was up by then ran past its limit too, and says so.
            if loop.time() >= deadline - PARENT_GRACE:
                raise timed_out from None
            raise
        error = header.get("error")
        if error:
            cls = ERRORS.get(error.get("kind", ""))
            if cls is None:
                raise RuntimeError(f"Cypher runner: {error.get('kind')}")
            exc = cls(str(error.get("detail", "")))
            if isinstance(exc, Busy):
                exc.retry_after = int(error.get("retry_after") or 1)
            raise exc
        return body

    async def close(self) -> None:
        self._closing = True
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Cypher runner did not start", exc_info=task.exception())


# ---------------------------------------------------------------- the child


class Admission:
    """Slots per key and in all, counted over Neo4j's live transactions of the endpoint plus
    this child's own requests (which may not have opened theirs yet)."""

    def __init__(self, agraph: AsyncGraph, settings: Settings) -> None:
        self.agraph = agraph
        self.per_key = settings.ttpgraph_cypher_per_key
        self.total = settings.ttpgraph_cypher_max_concurrent
        self.retry_after = max(1, round(settings.ttpgraph_cypher_timeout / 2))
        self.active: dict[str, str] = {}  # request id -> owner
        self._lock = asyncio.Lock()
        self._warned = False

    async def enter(self, request_id: str, owner: str) -> None:
        async with self._lock:
            try:
                live = await user_cypher.endpoint_transactions(self.agraph)
            except Neo4jError as exc:  # a user without SHOW TRANSACTIONS: count our own only
                if not self._warned:
                    log.warning("Cypher slots count this worker only: %s", exc.message)
                    self._warned = True
                live = []
            others = {req: who for who, req in live if req not in self.active}
            owners = [*self.active.values(), *others.values()]
            mine = sum(1 for who in owners if who == owner)
            if mine >= self.per_key:
                raise Busy(
                    f"this API key already has {mine} Cypher queries running (the limit is "
                    f"{self.per_key} at once, TTPGRAPH_CYPHER_PER_KEY; a query Neo4j is still "
                    "finishing counts until it ends)",
                    retry_after=self.retry_after,
                )
            if len(owners) >= self.total:
                raise Busy(
                    f"{len(owners)} Cypher queries are running (the limit is {self.total} at "
                    "once for all keys, TTPGRAPH_CYPHER_MAX_CONCURRENT)",
                    retry_after=self.retry_after,
                )
            self.active[request_id] = owner

    def leave(self, request_id: str) -> None:
        self.active.pop(request_id, None)


async def _serve(settings: Settings, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    agraph = AsyncGraph.connect(settings, pool_size=settings.ttpgraph_cypher_max_concurrent + 2)
    admission = Admission(agraph, settings)
    max_bytes = int(settings.ttpgraph_cypher_max_mb * 1024 * 1024)
    timeout = settings.ttpgraph_cypher_timeout
    write_lock = asyncio.Lock()
    tasks: set[asyncio.Task[Any]] = set()
    await _write_frame(writer, {"ready": True}, b"")

    async def reply(rid: int, body: bytes = b"", **error: Any) -> None:
        async with write_lock:
            await _write_frame(writer, {"id": rid, **({"error": error} if error else {})}, body)

    async def handle(req: dict[str, Any]) -> None:
        rid = int(req["id"])
        request_id = uuid.uuid4().hex
        try:
            await admission.enter(request_id, str(req["owner"]))
            try:
                async with asyncio.timeout(timeout + CHILD_GRACE):
                    answer = await user_cypher.run_read_only(
                        agraph, req["query"], req["params"], max_rows=int(req["max_rows"]),
                        timeout=timeout, max_bytes=max_bytes, owner=str(req["owner"]),
                        request_id=request_id,
                    )  # fmt: skip
            except QueryTimeout:  # Neo4j stopped it at the transaction timeout: say the same
                raise QueryTimeout(
                    f"the query ran past the {timeout:g} s limit (TTPGRAPH_CYPHER_TIMEOUT) and "
                    "was stopped; narrow it (filters, a smaller limit)"
                ) from None
            except TimeoutError:
                task = asyncio.create_task(user_cypher.terminate_request(agraph, request_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                raise QueryTimeout(
                    f"the query ran past the {timeout:g} s limit (TTPGRAPH_CYPHER_TIMEOUT) and "
                    "was stopped; narrow it (filters, a smaller limit)"
                ) from None
            finally:
                admission.leave(request_id)
            await reply(rid, answer.body)
        except TtpgraphError as exc:
            await reply(rid, kind=type(exc).__name__, detail=exc.detail,
                        retry_after=getattr(exc, "retry_after", None))  # fmt: skip
        except MemoryError:
            await reply(rid, kind="AnswerTooLarge", detail=(
                "answer: one value of it is larger than this server's Cypher runner may hold "
                f"({settings.ttpgraph_cypher_runner_mb} MB, TTPGRAPH_CYPHER_RUNNER_MB); ask "
                "for less"))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one request's bug must not stop the others
            log.error("Cypher runner: unexpected error", exc_info=exc)
            await reply(rid, kind=type(exc).__name__, detail="unexpected error")

    try:
        while True:
            try:
                req, _ = await _read_frame(reader, 0)
            except asyncio.IncompleteReadError:
                return  # the worker is gone
            task = asyncio.create_task(handle(req))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        await agraph.close()


def _limit_memory(mb: int) -> None:
    import resource

    limit = mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    w_transport, w_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    writer = asyncio.StreamWriter(w_transport, w_protocol, reader, loop)
    first, _ = await _read_frame(reader, 0)
    settings = Settings(**first["settings"])
    _limit_memory(settings.ttpgraph_cypher_runner_mb)
    await _serve(settings, reader, writer)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
