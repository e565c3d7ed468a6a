"""One writer at a time per thing written (an ATT&CK domain, an inventory, an intel source),
across processes and machines: a lock node in the graph, taken in its own transaction, with a
lease.

Two loads of the same domain at once used to both exit 0, the later one silently overwriting
the earlier. Now the second fails at once with one line naming who holds the lock and since
when. The lock lives where the data lives (a file lock would not hold across hosts, or for a
cluster): ``(:TtpgraphLock {name, owner, what, since, expires})``, unique by name. Taking it
writes the node under its own write lock before reading it, so two takers are serialised by
Neo4j and exactly one wins. The holder renews the lease every ``RENEW_S`` seconds while it works
and deletes the node when done; a holder that dies (killed, host lost) stops renewing, and the
lock is free again when the lease runs out (``LEASE_S``). Times are Neo4j's clock, so clients'
clocks do not matter.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from queries.errors import Conflict
from queries.graph import Graph

LEASE_S = 120.0
RENEW_S = 30.0

_SCHEMA = (
    "CREATE CONSTRAINT ttpgraph_lock_name IF NOT EXISTS "
    "FOR (l:TtpgraphLock) REQUIRE l.name IS UNIQUE"
)
_TAKE = """
MERGE (l:TtpgraphLock {name: $name})
SET l.touched = timestamp()
WITH l, (l.owner IS NULL OR l.owner = $owner OR l.expires < timestamp()) AS free
SET l.owner = CASE WHEN free THEN $owner ELSE l.owner END,
    l.what = CASE WHEN free THEN $what ELSE l.what END,
    l.since = CASE WHEN free THEN timestamp() ELSE l.since END,
    l.expires = CASE WHEN free THEN timestamp() + $lease_ms ELSE l.expires END
RETURN l.owner AS owner, l.what AS what, l.since AS since, l.expires AS expires
"""
_RENEW = """
MATCH (l:TtpgraphLock {name: $name, owner: $owner})
SET l.expires = timestamp() + $lease_ms
"""
_RELEASE = "MATCH (l:TtpgraphLock {name: $name, owner: $owner}) DELETE l"


def _when(ms: int | None) -> str:
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


@contextmanager
def graph_lock(graph: Graph, name: str, *, what: str, lease: float = LEASE_S) -> Iterator[None]:
    """Hold the lock ``name`` for the block, or raise ``Conflict`` (one line) when another
    process holds it."""
    owner = f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"
    lease_ms = int(lease * 1000)
    graph.write(_SCHEMA)
    row = graph.write(_TAKE, name=name, owner=owner, what=what, lease_ms=lease_ms)[0]
    if row["owner"] != owner:
        raise Conflict(
            f"{what}: another one is running ({row['what']}, {row['owner']}, since "
            f"{_when(row['since'])}); re-run when it has ended (its lease runs out at "
            f"{_when(row['expires'])} if it died)"
        )
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(min(RENEW_S, lease / 4)):
            try:
                graph.write(_RENEW, name=name, owner=owner, lease_ms=lease_ms)
            except Exception:  # noqa: BLE001 - the work itself reports Neo4j going away
                return

    renewer = threading.Thread(target=renew, name=f"lease {name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(Exception):  # Neo4j away: the lease runs out by itself
            graph.write(_RELEASE, name=name, owner=owner)
