"""Stay current: fetch from a TAXII 2.1 server only what was added since the last load.

For each domain, ``sync``:

1. reads the loaded release (its Release node): the TAXII server and collection it came from
   and the server's last ``date_added`` seen (``taxii_added_last``);
2. reads the collection's manifest (ids, versions and dates, no content) to learn which objects
   the release still holds: what the graph holds and the manifest does not has left the release
   (TAXII has no "deleted since", and ATT&CK releases do drop relationships);
3. fetches the objects ``added_after`` that date (when the release came from a file or another
   server, the date is the earliest ``date_added`` of the objects whose version differs from the
   graph's), validates them against the graph (``to_rows`` with the graph's ids and tactics);
4. applies them and the removals in one transaction (``write_rows(mode="partial")``), the
   Release node last, and reports what changed as a release diff.

Safe from cron: a lock file keeps two syncs from running at once (the second reports ``locked``
and writes nothing), a sync with nothing new writes nothing, and a sync that dies half-way has
written nothing, so the next run does the whole work again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from queries.catalog import Q
from queries.graph import Graph
from queries.releases import ReleaseDiff, diff_snapshots, snapshot_from_graph
from queries.settings import cache_dir

from . import sources
from .load import DEFAULT_DOMAINS, Progress, load_bundle, normalize_domain
from .stix import SKIPPED_TYPES, BundleError, detect_release, to_rows, type_counts
from .writer import ensure_schema, total_steps, write_rows

_BIG = 10_000_000


class SyncReport(BaseModel):
    domain: str
    status: Literal["updated", "up-to-date", "loaded", "locked"] = Field(
        description="updated: changes applied; up-to-date: nothing new; loaded: nothing was "
        "loaded before, so the whole collection was; locked: another sync was running"
    )
    source: str = ""
    added_after: str | None = Field(default=None, description="what was asked for (TAXII)")
    added_last: str | None = Field(default=None, description="the server's newest date_added")
    fetched: int = 0
    fetched_by_type: dict[str, int] = Field(default_factory=dict)
    removed: int = Field(default=0, description="objects and relationships no longer served")
    old_version: str | None = None
    new_version: str | None = None
    seconds: float = 0.0
    diff: ReleaseDiff | None = None
    inventories: list[dict[str, Any]] = Field(
        default_factory=list, description="inventories re-resolved against what was synced"
    )


def default_lock_path() -> Path:
    return cache_dir() / "sync.lock"


@contextlib.contextmanager
def sync_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking lock on ``path``; yields False when another process
    holds it. The lock goes with the process (a killed sync never leaves a stale lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _ts(value: str) -> datetime:
    """A TAXII/STIX timestamp as an aware datetime (``Z`` or an offset, any fraction)."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BundleError(f"TAXII server sent a bad timestamp {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sync(
    graph: Graph,
    *,
    domains: list[str] | tuple[str, ...] = (),
    taxii_url: str = sources.MITRE_TAXII_URL,
    user: str | None = None,
    password: str | None = None,
    collection_ids: dict[str, str] | None = None,
    per_request: int = 1000,
    lock_path: Path | None = None,
    progress: Progress | None = None,
    on_step: Callable[[str], None] | None = None,
) -> list[SyncReport]:
    """Bring each domain's release up to date with the TAXII server (see the module doc)."""
    wanted = [normalize_domain(d) for d in (domains or DEFAULT_DOMAINS)]
    with sync_lock(lock_path or default_lock_path()) as locked:
        if not locked:
            return [SyncReport(domain=d, status="locked") for d in wanted]
        return [
            _sync_domain(
                graph,
                d,
                taxii_url=taxii_url,
                user=user,
                password=password,
                collection_id=(collection_ids or {}).get(d),
                per_request=per_request,
                progress=progress,
                on_step=on_step or (lambda _m: None),
            )
            for d in wanted
        ]


def _sync_domain(
    graph: Graph,
    domain: str,
    *,
    taxii_url: str,
    user: str | None,
    password: str | None,
    collection_id: str | None,
    per_request: int,
    progress: Progress | None,
    on_step: Callable[[str], None],
) -> SyncReport:
    t0 = time.perf_counter()
    state = graph.read(Q.release_sync_state, domain=domain)
    taxii: dict[str, Any] = {"user": user, "password": password, "collection_id": collection_id}
    if not state:
        on_step(f"{domain}: nothing loaded yet, loading the whole collection from {taxii_url}")
        fetched = sources.from_taxii(taxii_url, domain=domain, per_request=per_request, **taxii)
        res = load_bundle(graph, fetched, domain=domain, progress=progress)
        return SyncReport(
            domain=domain,
            status="loaded",
            source=res.source,
            added_last=(fetched.taxii or {}).get("added_last"),
            fetched=len(fetched.objects),
            fetched_by_type=type_counts(fetched.objects),
            new_version=res.release,
            seconds=time.perf_counter() - t0,
        )
    release = state[0]["release"]
    on_step(f"{domain}: reading the collection's manifest from {taxii_url}")
    source, manifest = sources.taxii_manifest(
        taxii_url, domain=domain, per_request=per_request, **taxii
    )
    served = {m.id for m in manifest}
    in_graph = {
        r["stix_id"]: r["modified"]
        for r in graph.read(Q.release_object_versions, domain=domain, limit=_BIG)
    }
    removed = sorted(set(in_graph) - served)
    newest = max((_ts(m.date_added) for m in manifest), default=None)
    if release.get("taxii_added_last") and release.get("source") == source:
        after: datetime | None = _ts(release["taxii_added_last"])
    else:
        # Loaded from a file or another server: start at the first object whose version differs.
        changed = [
            _ts(m.date_added)
            for m in manifest
            if m.id.split("--")[0] not in SKIPPED_TYPES and in_graph.get(m.id) != m.version
        ]
        after = min(changed) - timedelta(milliseconds=1) if changed else None
    report = SyncReport(
        domain=domain,
        status="up-to-date",
        source=source,
        added_after=_iso(after) if after else None,
        added_last=_iso(newest) if newest else None,
        removed=len(removed),
        old_version=release.get("version"),
        new_version=release.get("version"),
    )
    objects: list[dict] = []
    if after is not None and newest is not None and newest > after:
        on_step(f"{domain}: fetching what was added after {report.added_after}")
        delta = sources.from_taxii(
            taxii_url,
            domain=domain,
            per_request=per_request,
            added_after=report.added_after,
            **taxii,
        )
        objects = delta.objects
    report.fetched = len(objects)
    report.fetched_by_type = type_counts(objects)
    if not objects and not removed:
        report.seconds = time.perf_counter() - t0
        return report  # nothing new: write nothing

    version = detect_release(objects, None) or release.get("version")
    before = snapshot_from_graph(graph, domain=domain)
    try:
        rows = to_rows(
            objects,
            domain=domain,
            spec_version="2.1",
            release=version,
            known_ids=lambda: [r["stix_id"] for r in graph.read(Q.release_known_ids, limit=_BIG)],
            known_tactics=lambda: {
                (r["domain"], r["shortname"]): r["stix_id"]
                for r in graph.read(Q.release_tactics, limit=_BIG)
            },
            require_attack_object=False,
        )
    except BundleError as exc:
        raise BundleError(f"{source}: {exc}") from None
    digest = hashlib.sha256()
    for m in sorted(manifest, key=lambda m: m.id):
        digest.update(f"{m.id}|{m.version}\n".encode())
    ensure_schema(graph)
    prog = progress or Progress()
    prog.start(f"syncing {domain} {version or ''}".strip(), total_steps(rows) + len(removed))
    write_rows(
        graph,
        rows,
        source=source,
        sha256=digest.hexdigest(),
        counts={},
        mode="partial",
        removed_ids=removed,
        release_extra={
            "taxii_url": taxii_url,
            "taxii_collection": source.rsplit("#", 1)[-1],
            "taxii_added_last": report.added_last,
        },
        progress=lambda _label, n: prog.advance(n),
    )
    prog.advance(len(removed))
    prog.done()
    report.status = "updated"
    report.new_version = version
    report.diff = diff_snapshots(before, snapshot_from_graph(graph, domain=domain))
    from .inventory_remap import remap_inventories

    # a sync may revoke within a release: every inventory is re-resolved, not only the stale
    report.inventories = [r.as_dict() for r in remap_inventories(graph, domain=domain, every=True)]
    report.seconds = time.perf_counter() - t0
    return report


def summarize(reports: list[SyncReport]) -> list[dict[str, object]]:
    """One row per domain for a table."""
    rows = []
    for r in reports:
        changes = Counter(r.diff.summary if r.diff else {})
        rows.append(
            {
                "domain": r.domain,
                "status": r.status,
                "version": f"{r.old_version or ''} -> {r.new_version or ''}"
                if r.old_version != r.new_version
                else (r.new_version or ""),
                "added_after": r.added_after or "",
                "fetched": r.fetched,
                "removed": r.removed,
                "changes": ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in changes.items() if v),
                "seconds": round(r.seconds, 2),
            }
        )
    return rows
