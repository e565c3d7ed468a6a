"""Where bundles come from: a file (.json / .json.gz), an https URL, or a TAXII 2.1 server."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stix import DOMAINS, BundleError, bundle_objects, detect_spec_version, parse_json

# Largest bundle accepted (decompressed): ATT&CK Enterprise is ~35 MB; this leaves room to grow
# while refusing gzip bombs. Override with TTPGRAPH_MAX_BUNDLE_MB.
MAX_BUNDLE_BYTES = int(os.environ.get("TTPGRAPH_MAX_BUNDLE_MB", "512")) * 1024 * 1024
# A gzip file may expand to at most MAX_EXPANSION times its size (STIX JSON compresses 10-20x;
# a bomb 1000x), or EXPANSION_FLOOR, whichever is more, and never past MAX_BUNDLE_BYTES: a
# 0.5 MB bomb stops at 50 MB decompressed instead of 512 MB (and the 2+ GB a worker then held).
MAX_EXPANSION = 100
EXPANSION_FLOOR = 16 * 1024 * 1024

MITRE_TAXII_URL = "https://attack-taxii.mitre.org/api/v21/"
# MITRE's collection ids per domain (the x-mitre-collection ids' UUIDs).
MITRE_COLLECTIONS = {
    "enterprise-attack": "x-mitre-collection--1f5f1533-f617-4ca8-9ab4-6a02367fa019",
    "mobile-attack": "x-mitre-collection--dac0d2d7-8653-445c-9bff-82f934c1e858",
    "ics-attack": "x-mitre-collection--90c00720-636b-4485-b342-8751d232bf09",
}


@dataclass
class FetchedBundle:
    """Objects of one bundle plus where they came from."""

    objects: list[dict[str, Any]]
    spec_version: str
    source: str
    sha256: str
    name_hint: str | None = None
    taxii: dict[str, Any] | None = None
    """For TAXII: ``url``, ``collection`` and ``added_last`` (the server's
    ``X-TAXII-Date-Added-Last``: where the next ``added_after`` sync starts)."""


@dataclass
class ManifestEntry:
    """One object a TAXII collection holds: id, when it was added, its version (modified)."""

    id: str
    date_added: str
    version: str


def _read_limited(
    stream: io.BufferedIOBase | gzip.GzipFile, where: str, limit: int | None = None
) -> bytes:
    """Everything ``stream`` holds, counted as it is read: past ``limit`` (default: the bundle
    limit) nothing more is read or kept."""
    limit = MAX_BUNDLE_BYTES if limit is None else limit
    buf = bytearray()
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        if len(buf) + len(chunk) > limit:
            if limit < MAX_BUNDLE_BYTES:
                raise BundleError(
                    f"{where}: expands past {limit // (1024 * 1024)} MB once decompressed "
                    f"(more than {MAX_EXPANSION} times its compressed size: a gzip bomb?)"
                )
            raise BundleError(
                f"{where}: larger than {MAX_BUNDLE_BYTES // (1024 * 1024)} MB once decompressed "
                "(set TTPGRAPH_MAX_BUNDLE_MB to allow more)"
            )
        buf += chunk
    return bytes(buf)


def expansion_limit(compressed_size: int) -> int:
    """Bytes a compressed input of that size may expand to (see MAX_EXPANSION)."""
    return min(MAX_BUNDLE_BYTES, max(EXPANSION_FLOOR, MAX_EXPANSION * compressed_size))


def decode_bytes(raw: bytes, where: str) -> bytes:
    """Gunzip when the data is gzip (by magic number), with the size and expansion limits."""
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                return _read_limited(gz, where, expansion_limit(len(raw)))
        except (OSError, EOFError, zlib.error) as exc:
            raise BundleError(f"{where}: broken gzip data ({_one_line(exc)})") from None
    return raw


def from_bytes(raw: bytes, *, source: str, name_hint: str | None = None) -> FetchedBundle:
    data = decode_bytes(raw, source)
    bundle = parse_json(data, source)
    objects = bundle_objects(bundle, source)
    return FetchedBundle(
        objects=objects,
        spec_version=detect_spec_version(bundle, objects),
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        name_hint=name_hint,
    )


def read_file(path: str | Path) -> bytes:
    """A bundle file's bytes, gunzipped (with the size limits)."""
    p = Path(path)
    if not p.exists():
        raise BundleError(f"{p}: no such file")
    if not p.is_file():
        raise BundleError(f"{p}: not a file")
    with open(p, "rb") as fh:
        raw = _read_limited(fh, str(p))  # type: ignore[arg-type]
    return decode_bytes(raw, str(p))


def from_file(path: str | Path, data: bytes | None = None) -> FetchedBundle:
    """A bundle file, parsed (``data``: its bytes, already read with :func:`read_file`)."""
    p = Path(path)
    raw = read_file(p) if data is None else data
    return from_bytes(raw, source=str(p.resolve()), name_hint=p.name)


def from_url(url: str, *, timeout: float = 60.0) -> FetchedBundle:
    import httpx

    if not url.startswith(("https://", "http://")):
        raise BundleError(f"{url}: only http(s) URLs are supported")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise BundleError(f"{url}: HTTP {resp.status_code}")
            chunks, total = [], 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{url}: response larger than the bundle size limit")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise BundleError(f"{url}: download failed ({exc.__class__.__name__}: {exc})") from None
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return from_bytes(b"".join(chunks), source=url, name_hint=name)


def from_taxii(
    url: str = MITRE_TAXII_URL,
    *,
    domain: str,
    collection_id: str | None = None,
    user: str | None = None,
    password: str | None = None,
    per_request: int = 1000,
    added_after: str | None = None,
    on_page: Callable[[int], None] | None = None,
) -> FetchedBundle:
    """Fetch every object of one collection (or those added after ``added_after``), paged."""
    if domain not in DOMAINS:
        raise BundleError(f"unknown ATT&CK domain {domain!r}")
    added: list[str] = []
    objects: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"added_after": added_after} if added_after else {}
    with _taxii_errors(url):
        coll = _find_collection(url, domain, collection_id, user, password)
        _watch_date_added(coll, added)
        for envelope in _pages(coll.get_objects, per_request, kwargs):
            page = _envelope_list(envelope, "objects", url)
            objects.extend(page)
            if on_page:
                on_page(len(page))
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: (str(o.get("id")), str(o.get("modified")))):
        digest.update(repr(sorted(obj.items())).encode())
    return FetchedBundle(
        objects=objects,
        spec_version="2.1",
        source=f"taxii:{url}#{coll.id}",
        sha256=digest.hexdigest(),
        taxii={"url": url, "collection": coll.id, "added_last": max(added, default=None)},
    )


def taxii_manifest(
    url: str = MITRE_TAXII_URL,
    *,
    domain: str,
    collection_id: str | None = None,
    user: str | None = None,
    password: str | None = None,
    per_request: int = 1000,
) -> tuple[str, list[ManifestEntry]]:
    """The collection's manifest: every object it holds now (ids and versions, no content).

    Returns the source name (``taxii:URL#COLLECTION``) and the entries.
    """
    if domain not in DOMAINS:
        raise BundleError(f"unknown ATT&CK domain {domain!r}")
    entries: list[ManifestEntry] = []
    with _taxii_errors(url):
        coll = _find_collection(url, domain, collection_id, user, password)
        for envelope in _pages(coll.get_manifest, per_request, {}):
            for i, item in enumerate(_envelope_list(envelope, "objects", url)):
                if not isinstance(item, dict) or not all(
                    isinstance(item.get(k), str) for k in ("id", "date_added")
                ):
                    raise BundleError(f"{url}: manifest entry {i} needs an id and a date_added")
                version = item.get("version")
                entries.append(
                    ManifestEntry(
                        item["id"], item["date_added"], version if isinstance(version, str) else ""
                    )
                )
    return f"taxii:{url}#{coll.id}", entries


@contextlib.contextmanager
def _taxii_errors(url: str) -> Iterator[None]:
    """Every failure of a TAXII exchange as one BundleError line naming the server."""
    from taxii2client.exceptions import TAXIIServiceException

    try:
        yield
    except BundleError:
        raise
    except TAXIIServiceException as exc:
        raise BundleError(f"{url}: TAXII error ({_one_line(exc)})") from None
    except Exception as exc:  # requests/JSON errors from a server that is down or broken
        raise BundleError(
            f"{url}: TAXII server unreachable or broken ({exc.__class__.__name__}: "
            f"{_one_line(exc)})"
        ) from None


def _envelope_list(envelope: Any, key: str, url: str) -> list[Any]:
    if not isinstance(envelope, dict):
        raise BundleError(f"{url}: TAXII server answered something that is not JSON")
    page = envelope.get(key, [])
    if not isinstance(page, list):
        raise BundleError(f"{url}: TAXII envelope has no '{key}' list")
    return page


def _watch_date_added(coll: Any, sink: list[str]) -> None:
    """Collect the ``X-TAXII-Date-Added-Last`` header of every answer (taxii2-client drops
    response headers; a requests response hook sees them)."""
    session = getattr(getattr(coll, "_conn", None), "session", None)
    if session is None:  # pragma: no cover - taxii2-client internals changed
        return

    def hook(resp: Any, *args: Any, **kwargs: Any) -> Any:
        value = resp.headers.get("X-TAXII-Date-Added-Last")
        if isinstance(value, str) and value:
            sink.append(value)
        return resp

    session.hooks.setdefault("response", []).append(hook)


def _one_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _pages(fetch: Any, per_request: int, kwargs: dict[str, Any]) -> Iterator[Any]:
    from taxii2client.v21 import as_pages

    yield from as_pages(fetch, per_request=per_request, **kwargs)


def _find_collection(
    url: str, domain: str, collection_id: str | None, user: str | None, password: str | None
) -> Any:
    from taxii2client.v21 import ApiRoot

    wanted = collection_id or MITRE_COLLECTIONS[domain]
    uuid_part = wanted.split("--")[-1]
    root = ApiRoot(url, user=user, password=password)
    titles = []
    for coll in root.collections:
        titles.append(coll.title)
        if coll.id in (wanted, uuid_part):
            return coll
    # Fall back on the title ("Enterprise ATT&CK", "Mobile ATT&CK", "ICS ATT&CK").
    word = domain.split("-")[0]
    for coll in root.collections:
        if word in (coll.title or "").lower():
            return coll
    raise BundleError(f"{url}: no collection for {domain} (collections: {', '.join(titles)})")
