"""The import entry points: an export given as bytes or as a file, a STIX bundle or MISP event
JSON; a bundle over :data:`STREAM_ABOVE` bytes is read as a stream, so memory does not grow with
it."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from queries.errors import InvalidInput
from queries.graph import Graph
from queries.intel import ImportResult

from ..sources import MAX_BUNDLE_BYTES
from .common import check_source, nonblank
from .misp import misp_rows
from .read import bundle_header, detect_format, read_json, stream_objects
from .stix import stix_import
from .write import NOTHING, import_result, write_intel

STREAM_ABOVE = 32 * 1024 * 1024
"""Bytes above which a STIX bundle is read as a stream (two passes, objects one at a time)
rather than parsed whole."""
MAX_INTEL_BYTES = int(os.environ.get("TTPGRAPH_MAX_INTEL_MB", "4096")) * 1024 * 1024
"""The largest intelligence file read (streamed: memory does not grow with it)."""


def import_intel_bytes(
    graph: Graph,
    raw: bytes,
    *,
    name: str,
    source: str | None = None,
    link_attack_ids: bool = False,
) -> ImportResult:
    """Import one export (STIX bundle or MISP event JSON) given as bytes; ``name`` is the file
    name (the default source label is ``<flavour>-export <name>``)."""
    if len(raw) > STREAM_ABOVE:
        return _import_stream(
            graph, lambda: io.BytesIO(raw), name=name, source=source,
            link_attack_ids=link_attack_ids, digest=hashlib.sha256(raw).hexdigest(),
        )  # fmt: skip
    t0 = time.perf_counter()
    if source is not None:
        source = check_source(source)
    data = read_json(raw, name)
    digest = hashlib.sha256(raw).hexdigest()
    if detect_format(data, name) == "stix":
        objects = data.get("objects")
        if not isinstance(objects, list):
            raise InvalidInput(f"{name}: bundle has no 'objects' list")
        rows, replaced = stix_import(
            graph,
            lambda: objects,
            source=source,
            file=name,
            sha256=digest,
            spec_version=nonblank(data.get("spec_version")),
            link_attack_ids=link_attack_ids,
        )
        return import_result(rows, replaced, t0)
    return _import_misp(graph, data, name=name, source=source, digest=digest,
                        link_attack_ids=link_attack_ids, t0=t0)  # fmt: skip


def _import_misp(
    graph: Graph, data: Any, *, name: str, source: str | None, digest: str,
    link_attack_ids: bool, t0: float,
) -> ImportResult:  # fmt: skip
    rows = misp_rows(
        data, graph, source=source, file=name, sha256=digest, link_attack_ids=link_attack_ids
    )
    if not rows.node_counter:
        raise InvalidInput(f"{name}: {NOTHING}")
    replaced = write_intel(graph, rows)
    return import_result(rows, replaced, t0)


def _import_stream(
    graph: Graph,
    opener: Callable[[], BinaryIO],
    *,
    name: str,
    source: str | None,
    link_attack_ids: bool,
    digest: str,
) -> ImportResult:
    """A large export: a STIX bundle read as a stream (memory does not grow with it); anything
    else is read whole, within the bundle size limit."""
    t0 = time.perf_counter()
    if source is not None:
        source = check_source(source)
    kind, version = bundle_header(opener, name)
    if kind != "bundle":
        with opener() as fh:
            raw = fh.read(MAX_BUNDLE_BYTES + 1)
        data = read_json(raw, name)
        detect_format(data, name)
        return _import_misp(graph, data, name=name, source=source, digest=digest,
                            link_attack_ids=link_attack_ids, t0=t0)  # fmt: skip
    rows, replaced = stix_import(
        graph,
        lambda: stream_objects(opener, name),
        source=source,
        file=name,
        sha256=digest,
        spec_version=version,
        link_attack_ids=link_attack_ids,
    )
    return import_result(rows, replaced, t0)


def import_intel_file(
    graph: Graph, path: str | Path, *, source: str | None = None, link_attack_ids: bool = False
) -> ImportResult:
    """Import a file: a STIX 2.1 bundle (OpenCTI, ATT&CK Workbench, MISP) or MISP event JSON.
    One over :data:`STREAM_ABOVE` bytes is read as a stream."""
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"{p}: no such file")
    if not p.is_file():
        raise InvalidInput(f"{p}: not a file")
    size = p.stat().st_size
    if size <= STREAM_ABOVE:
        return import_intel_bytes(
            graph, p.read_bytes(), name=p.name, source=source, link_attack_ids=link_attack_ids
        )
    if size > MAX_INTEL_BYTES:
        raise InvalidInput(f"{p}: larger than {MAX_INTEL_BYTES // (1024 * 1024)} MB")
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return _import_stream(
        graph, lambda: p.open("rb"), name=p.name, source=source,
        link_attack_ids=link_attack_ids, digest=digest.hexdigest(),
    )  # fmt: skip
