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
lock is free again when the lease runs out (``LEASE_S``) — or at once when the holder was a
process of this host that is gone (killed, or Neo4j went away before it could let go), which
the next taker checks. Times are Neo4j's clock, so clients' clocks do not matter.
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

LOCK_SCHEMA = (
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
# Take over a lock whose holder is known dead (compare-and-set on its owner).
_STEAL = """
MATCH (l:TtpgraphLock {name: $name, owner: $stale})
SET l.owner = $owner, l.what = $what, l.since = timestamp(), l.expires = timestamp() + $lease_ms
RETURN l.owner AS owner, l.what AS what, l.since AS since, l.expires AS expires
"""
_RENEW = """
MATCH (l:TtpgraphLock {name: $name, owner: $owner})
SET l.expires = timestamp() + $lease_ms
"""
_RELEASE = "MATCH (l:TtpgraphLock {name: $name, owner: $owner}) DELETE l"


_HELD: set[str] = set()  # the owners this process holds now


def _holder_gone(owner: str) -> bool:
    """True when ``owner`` (``host pid N (token)``) was a process of this host that no longer
    holds it: the process is gone, or it is this process and it let go without deleting."""
    host, sep, rest = owner.partition(" pid ")
    pid_text = rest.split(" ", 1)[0]
    if not sep or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _HELD
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _when(ms: int | None) -> str:
    if not ms:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def check_free(graph: Graph, name: str, *, what: str) -> None:
    """``Conflict`` (one line) when a live holder has the lock ``name`` now; for work that
    writes nothing but must not answer from a graph another process is changing."""
    rows = graph.read(
        "MATCH (l:TtpgraphLock {name: $name}) WHERE l.expires >= timestamp() "
        "RETURN l.owner AS owner, l.what AS what, l.since AS since, l.expires AS expires",
        name=name,
    )
    if rows and rows[0]["owner"] and not _holder_gone(rows[0]["owner"]):
        row = rows[0]
        raise Conflict(
            f"{what}: another one is running ({row['what']}, {row['owner']}, since "
            f"{_when(row['since'])}); re-run when it has ended (its lease runs out at "
            f"{_when(row['expires'])} if it died)"
        )


@contextmanager
def graph_lock(graph: Graph, name: str, *, what: str, lease: float = LEASE_S) -> Iterator[None]:
    """Hold the lock ``name`` for the block, or raise ``Conflict`` (one line) when another
    process holds it."""
    owner = f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"
    lease_ms = int(lease * 1000)
    graph.write(LOCK_SCHEMA)
    row = graph.write(_TAKE, name=name, owner=owner, what=what, lease_ms=lease_ms)[0]
    if row["owner"] != owner and _holder_gone(row["owner"]):
        stolen = graph.write(
            _STEAL, name=name, stale=row["owner"], owner=owner, what=what, lease_ms=lease_ms
        )
        row = stolen[0] if stolen else row
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
    _HELD.add(owner)
    try:
        yield
    finally:
        _HELD.discard(owner)
        stop.set()
        renewer.join()
        with contextlib.suppress(Exception):  # Neo4j away: the lease runs out by itself
            graph.write(_RELEASE, name=name, owner=owner)
