"""Load ATT&CK into the graph: fetch -> validate -> rows -> one write transaction."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queries.catalog import Q
from queries.graph import Graph

from . import sources
from .locks import check_free, graph_lock
from .stix import (
    DOMAIN_ALIASES,
    BundleError,
    GraphRows,
    detect_domain,
    detect_release,
    to_rows,
)
from .writer import ensure_schema, total_steps, write_rows

DEFAULT_DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")
# What a load writes, versioned: a bundle loaded by a ttpgraph that wrote it differently is
# loaded again even when its bytes are unchanged. Bump when the writer's output changes.
# 2: techniques carry their ranking facts (loader.technique_facts).
# 3: groups carry their technique ids by path kinds (loader.technique_facts).
# 4: techniques carry their telemetry and mitigations (loader.technique_facts).
# 5: groups carry their name as analysts' words are compared (name_key, loader.stix).
LOAD_FORMAT = 5


@dataclass
class LoadResult:
    domain: str
    release: str | None
    spec_version: str
    source: str
    sha256: str
    nodes: int
    relationships: int
    counts: dict[str, int]
    skipped: dict[str, int]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    # inventories re-resolved against the new release (loader.inventory_remap)
    inventories: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    unchanged: bool = False
    """Nothing written: the same bytes were loaded already (``force`` loads them again)."""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Progress:
    """What a front door hands the loader to show progress (a no-op by default)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def done(self) -> None: ...


def normalize_domain(value: str) -> str:
    try:
        return DOMAIN_ALIASES[value.strip().lower()]
    except KeyError:
        raise BundleError(f"unknown domain {value!r}: use enterprise, mobile or ics") from None


def prepare(
    fetched: sources.FetchedBundle,
    *,
    domain: str | None = None,
    release: str | None = None,
    known_ids: Callable[[], Iterable[str]] | None = None,
) -> GraphRows:
    """Everything a load does before it writes: find the domain and release, validate the whole
    bundle and turn it into rows. Bad input raises one-line ``BundleError`` naming the source."""
    found = detect_domain(fetched.objects)
    if found is None:
        raise BundleError(f"{fetched.source}: not an ATT&CK bundle (no matrix, no techniques)")
    if domain is not None and normalize_domain(domain) != found:
        raise BundleError(f"{fetched.source}: holds {found}, not {normalize_domain(domain)}")
    version = release or detect_release(fetched.objects, fetched.name_hint)
    if not version:
        # A release recorded as null would make every diff and layer version wrong.
        raise BundleError(
            f"{fetched.source}: no ATT&CK release in it (STIX 2.0 bundles carry none) nor in "
            "its file name (like enterprise-attack-18.1.json): pass --release, e.g. --release 18.1"
        )
    try:
        return to_rows(
            fetched.objects,
            domain=found,
            spec_version=fetched.spec_version,
            release=version,
            known_ids=known_ids,
        )
    except BundleError as exc:
        raise BundleError(f"{fetched.source}: {exc}") from None


def keep_tactic_history(graph: Graph, rows: GraphRows, objects: list[dict[str, Any]]) -> None:
    """Carry each tactic's history onto the rows that replace it, adding what this release
    changes: ``former_shortnames`` / ``former_names`` (a renamed tactic: ATT&CK v19 renamed
    TA0005 defense-evasion to stealth) and ``took_from`` (the shortnames of old tactics whose
    techniques it took in a split or a merge: v19's TA0112 defense-impairment took from
    defense-evasion), so that a question naming a tactic the release no longer has can say
    where it went. The flows are computed (as the release diff computes them) only when a
    tactic of the loaded release changes its name or a new one appears."""
    tactic_rows = [r for labels, rs in rows.nodes.items() if labels[0] == "Tactic" for r in rs]
    if not tactic_rows:
        return
    loaded = {r["stix_id"]: r for r in graph.read(Q.tactic_history, domain=rows.domain)}
    if not loaded:
        return  # a first load: no history to keep
    for r in tactic_rows:
        old = loaded.get(r["stix_id"])
        for key in ("former_shortnames", "former_names", "took_from"):
            if old and old[key]:
                r[key] = list(old[key])
    changed = any(
        r["stix_id"] not in loaded
        or (loaded[r["stix_id"]]["shortname"], loaded[r["stix_id"]]["name"])
        != (r.get("shortname"), r["name"])
        for r in tactic_rows
    )
    if not changed:
        return
    from queries.releases import snapshot_from_graph, tactic_changes

    from .diff import snapshot_from_objects

    old_snap = snapshot_from_graph(graph, domain=rows.domain)
    new_snap = snapshot_from_objects(
        objects, domain=rows.domain, version=rows.release, source="bundle"
    )
    changes = tactic_changes(old_snap, new_snap)
    by_id = {r.get("attack_id") or r["stix_id"]: r for r in tactic_rows}

    def add(row: dict[str, Any] | None, key: str, value: str) -> None:
        if row is not None and value not in row.setdefault(key, []):
            row[key].append(value)

    for t in changes.renamed:
        add(by_id.get(t.tactic_id), "former_shortnames", t.old_shortname)
        add(by_id.get(t.tactic_id), "former_names", t.old_name)
    for s in changes.split:
        for f in s.went_to:
            if f.tactic_id != s.tactic_id:
                add(by_id.get(f.tactic_id), "took_from", s.shortname)
    for m in changes.merged:
        for f in m.came_from:
            if f.tactic_id != m.tactic_id:
                add(by_id.get(m.tactic_id), "took_from", f.shortname)
    for r in tactic_rows:  # a tactic's own names are not its history
        for key, own in (("former_shortnames", r.get("shortname")), ("former_names", r["name"])):
            if own in r.get(key, []):
                r[key] = [x for x in r[key] if x != own]


def loaded_already(
    graph: Graph,
    sha256: str,
    *,
    source: str,
    domain: str | None = None,
    release: str | None = None,
    started: float | None = None,
) -> LoadResult | None:
    """The load of these bytes, when the graph holds them already (same SHA-256, written the
    same way, the same domain and release if asked): there is nothing to write."""
    t0 = time.perf_counter() if started is None else started
    want = normalize_domain(domain) if domain else None
    for r in graph.read(Q.release_by_sha256, sha256=sha256):
        if r["load_format"] != LOAD_FORMAT or (want and r["domain"] != want):
            continue
        if release is not None and r["version"] != release:
            continue
        # The same bytes, but a load of this domain may be running now: say so, as a load would.
        check_free(graph, f"load:{r['domain']}", what=f"a load of {r['domain']}")
        counts = json.loads(r["counts"]) if r["counts"] else {}
        return LoadResult(
            domain=r["domain"],
            release=r["version"],
            spec_version=r["spec_version"],
            source=source,
            sha256=sha256,
            nodes=r["nodes"] or 0,
            relationships=r["relationships"] or 0,
            counts=counts,
            skipped={},
            seconds=time.perf_counter() - t0,
            unchanged=True,
        )
    return None


def load_bundle(
    graph: Graph,
    fetched: sources.FetchedBundle,
    *,
    domain: str | None = None,
    release: str | None = None,
    progress: Progress | None = None,
    skip_unchanged: bool = False,
) -> LoadResult:
    """Validate a fetched bundle completely, then write it in one transaction.

    ``skip_unchanged``: when the graph holds these very bytes already, write nothing and say
    so (``LoadResult.unchanged``); what ``ttpgraph load`` does unless ``--force``.
    """
    t0 = time.perf_counter()
    if skip_unchanged:
        same = loaded_already(
            graph, fetched.sha256, source=fetched.source, domain=domain, release=release,
            started=t0,
        )  # fmt: skip
        if same is not None:
            return same
    prog = progress or Progress()
    rows = prepare(
        fetched,
        domain=domain,
        release=release,
        known_ids=lambda: [r["stix_id"] for r in graph.read(Q.release_known_ids, limit=10_000_000)],
    )
    found = rows.domain
    keep_tactic_history(graph, rows, fetched.objects)
    t_rows = time.perf_counter()
    with graph_lock(graph, f"load:{found}", what=f"a load of {found}"):
        return _write(graph, fetched, rows, prog, t0, t_rows)


def _write(
    graph: Graph,
    fetched: sources.FetchedBundle,
    rows: GraphRows,
    prog: Progress,
    t0: float,
    t_rows: float,
) -> LoadResult:
    found, version = rows.domain, rows.release
    ensure_schema(graph)
    t_schema = time.perf_counter()
    counts = rows.counts()
    prog.start(f"loading {found} {version or ''}".strip(), total_steps(rows))
    taxii = fetched.taxii or {}
    extra: dict[str, Any] = {"load_format": LOAD_FORMAT}
    if taxii:
        extra |= {
            "taxii_url": taxii.get("url"),
            "taxii_collection": taxii.get("collection"),
            "taxii_added_last": taxii.get("added_last"),
        }
    write_rows(
        graph,
        rows,
        source=fetched.source,
        sha256=fetched.sha256,
        counts=counts,
        progress=lambda _label, n: prog.advance(n),
        release_extra=extra,
    )
    prog.done()
    from .inventory_remap import remap_inventories

    remapped = [r.as_dict() for r in remap_inventories(graph, domain=found)]
    t_end = time.perf_counter()
    return LoadResult(
        domain=found,
        release=version,
        spec_version=fetched.spec_version,
        source=fetched.source,
        sha256=fetched.sha256,
        nodes=rows.node_count(),
        relationships=rows.rel_count(),
        counts=counts,
        skipped=dict(rows.skipped),
        seconds=t_end - t0,
        warnings=list(rows.warnings),
        inventories=remapped,
        timings={
            "validate_and_transform": t_rows - t0,
            "schema": t_schema - t_rows,
            "write": t_end - t_schema,
        },
    )


def load_file(graph: Graph, path: str, **kw: Any) -> LoadResult:
    return load_bundle(graph, sources.from_file(path), **kw)


def load_source(
    graph: Graph,
    source: str,
    *,
    domains: tuple[str, ...] | list[str] = (),
    release: str | None = None,
    taxii_url: str = sources.MITRE_TAXII_URL,
    progress: Progress | None = None,
    on_fetch: Callable[[str], None] | None = None,
    skip_unchanged: bool = False,
) -> list[LoadResult]:
    """Load from ``source``: a file path, an http(s) URL, or ``taxii`` (one load per domain).
    ``skip_unchanged``: see :func:`load_bundle` (a file is hashed before it is parsed)."""
    if source == "taxii":
        results = []
        for dom in [normalize_domain(d) for d in (domains or DEFAULT_DOMAINS)]:
            if on_fetch:
                on_fetch(f"fetching {dom} from {taxii_url}")
            fetched = sources.from_taxii(taxii_url, domain=dom)
            results.append(
                load_bundle(
                    graph, fetched, domain=dom, progress=progress, skip_unchanged=skip_unchanged
                )
            )
        return results
    if len(domains) > 1:
        raise BundleError("a file or URL holds one domain: pass at most one --domain")
    file_domain = domains[0] if domains else None
    if on_fetch:
        on_fetch(f"reading {source}")
    if source.startswith(("https://", "http://")):
        fetched = sources.from_url(source)
    else:
        t0 = time.perf_counter()
        data = sources.read_file(source)
        if skip_unchanged:
            same = loaded_already(
                graph, hashlib.sha256(data).hexdigest(), source=str(Path(source).resolve()),
                domain=file_domain, release=release, started=t0,
            )  # fmt: skip
            if same is not None:
                return [same]
        fetched = sources.from_file(source, data)
    return [
        load_bundle(
            graph,
            fetched,
            domain=file_domain,
            release=release,
            progress=progress,
            # a file was checked before it was parsed; a URL's bytes only now
            skip_unchanged=skip_unchanged and fetched.source.startswith(("https://", "http://")),
        )
    ]
