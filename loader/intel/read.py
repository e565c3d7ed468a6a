"""Reading an export: JSON whole (gzip or not, within the bundle size limit), which format it
is, and a large STIX bundle as a stream (its header, then its objects one at a time)."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import ijson

from queries.errors import InvalidInput
from queries.limits import MAX_NESTING, check_nesting

from ..sources import MAX_BUNDLE_BYTES, decode_bytes
from ..stix import BundleError
from .common import one_line


def read_json(raw: bytes, where: str) -> Any:
    """Bytes (gzip or not) -> JSON, with the bundle size limit; InvalidInput when not JSON."""
    if len(raw) > MAX_BUNDLE_BYTES:
        raise InvalidInput(f"{where}: larger than {MAX_BUNDLE_BYTES // (1024 * 1024)} MB")
    try:
        data = decode_bytes(raw, where)
    except BundleError as exc:
        raise InvalidInput(str(exc)) from None
    if not data.strip():
        raise InvalidInput(f"{where}: empty file")
    import orjson

    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise InvalidInput(f"{where}: nested deeper than {MAX_NESTING} levels") from None
        raise InvalidInput(f"{where}: not valid JSON ({exc})") from None
    check_nesting(parsed, where)
    return parsed


def detect_format(data: Any, where: str) -> str:
    """``stix`` (a bundle) or ``misp`` (one event, a list of events, or a search response)."""
    if isinstance(data, dict) and data.get("type") == "bundle":
        return "stix"
    if isinstance(data, dict) and ("Event" in data or "response" in data):
        return "misp"
    if isinstance(data, list) and data and all(isinstance(e, dict) and "Event" in e for e in data):
        return "misp"
    kind = type(data).__name__ if not isinstance(data, dict) else f"type {data.get('type')!r}"
    raise InvalidInput(f"{where}: neither a STIX bundle nor a MISP event ({kind})")


def _gunzipped(fh: BinaryIO) -> BinaryIO:
    head = fh.read(2)
    fh.seek(0)
    return gzip.GzipFile(fileobj=fh) if head == b"\x1f\x8b" else fh  # type: ignore[return-value]


def bundle_header(opener: Callable[[], BinaryIO], name: str) -> tuple[str | None, str | None]:
    """(the top-level ``type``, ``spec_version``) of a JSON document, read without building
    it; InvalidInput when it is not JSON or a bundle without an ``objects`` list."""
    kind = version = None
    objects = None
    with opener() as raw, _gunzipped(raw) as fh:
        try:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "type" and event == "string":
                    kind = value
                elif prefix == "spec_version" and event == "string":
                    version = value
                elif prefix == "objects" and event in ("start_array", "start_map", "string",
                                                       "number", "null", "boolean"):  # fmt: skip
                    objects = event
                    if kind is not None:
                        break
                    if event == "start_array":
                        continue
                if objects == "start_array" and kind is not None:
                    break
        except ijson.JSONError as exc:
            raise InvalidInput(f"{name}: not valid JSON ({one_line(exc)})") from None
    if kind == "bundle" and objects != "start_array":
        raise InvalidInput(f"{name}: bundle has no 'objects' list")
    if kind == "bundle" and version is None:
        with opener() as raw, _gunzipped(raw) as fh, contextlib.suppress(ijson.JSONError):
            found = next(ijson.items(fh, "spec_version"), None)
            version = found if isinstance(found, str) else None
    return kind, version


def stream_objects(opener: Callable[[], BinaryIO], name: str) -> Iterator[Any]:
    """A bundle's objects, one at a time."""
    with opener() as raw, _gunzipped(raw) as fh:
        try:
            for obj in ijson.items(fh, "objects.item", use_float=True):
                check_nesting(obj, name, MAX_NESTING - 2)
                yield obj
        except ijson.JSONError as exc:
            raise InvalidInput(f"{name}: not valid JSON ({one_line(exc)})") from None
