"""The organisation's own intelligence into the graph, kept apart from MITRE's objects.

Three ways in, one way down:

- STIX 2.1 bundles as OpenCTI, ATT&CK Workbench and MISP (misp-stix) export them: intrusion
  sets and threat actors, campaigns, malware and tools, reports and groupings, indicators (with
  their patterns), observables (SCOs, and observed-data flattened to them), sightings and
  incidents, with ``uses`` / ``indicates`` / ``attributed-to`` / ``based-on`` / ... relationships;
  every object is validated with ``stix2`` (``allow_custom=True``: OpenCTI's and MISP's custom
  properties and extensions are fine), an invalid one refuses the whole import with one line
  naming it;
- MISP event JSON: the event becomes a ``Report``, attributes become IOCs (``Indicator`` when
  ``to_ids``, else ``Observable``), ATT&CK galaxy tags (``misp-galaxy:mitre-attack-pattern="... -
  T1059.001"``) link to ATT&CK's techniques, threat-actor galaxy clusters become the
  organisation's clusters;
- a quick incident form: a name, observed technique ids, optional IOCs.

Everything lands as the organisation's own nodes: label ``OrgObject`` plus ``OrgCluster``,
``OrgCampaign``, ``OrgSoftware``, ``Report``, ``Indicator``, ``Observable``, ``Sighting`` or
``Incident``; ``org: true``, ``source`` (the import's label) and a unique ``key`` (source + STIX
id). Relationships carry ``org: true`` and ``source`` too. They go between those nodes or *from*
them *to* ATT&CK's ``Technique``, ``Software``, ``Group`` and ``Campaign`` nodes (matched by STIX
id or ATT&CK id); nothing here ever sets a property or label on, or adds a relationship from,
an ``AttackObject``. An import is staged in batches beside what the same source imported before
and switched in with one small transaction (``loader.intel_store``: readers see the previous
import or the new one, never half), keeping the analyst's ``SAME_AS`` links; a bundle over
:data:`STREAM_ABOVE` bytes is read as a stream, so memory does not grow with it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import ipaddress
import json
import os
import re
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson
from neo4j import ManagedTransaction

from queries.cache import INTEL, bump_graph_version
from queries.catalog import Q
from queries.errors import Conflict, InvalidInput, NotFound
from queries.graph import Graph, neo4j_errors
from queries.intel import (
    CLUSTER_ID,
    ImportResult,
    read_quietly,
    resolve_cluster_keys,
    resolve_techniques,
)
from queries.limits import MAX_NESTING, check_nesting
from queries.resolve import resolve_group

from .intel_fastcheck import plainly_valid, simple_pattern
from .intel_store import BULK_LABELS, StagedIntel, quiet_session, retire_source
from .intel_store import SCHEMA as STORE_SCHEMA
from .locks import graph_lock
from .sources import MAX_BUNDLE_BYTES, decode_bytes
from .stix import BundleError

# uuid5 namespace for ids ttpgraph makes up (MISP attributes without a STIX twin, incidents).
NAMESPACE = uuid.UUID("2c9a6f0e-6c1d-5f55-9a8e-6f1b8a0c7d21")

# STIX type -> the organisation's label. Labels written come only from this allow-list.
ORG_LABELS: dict[str, str] = {
    "intrusion-set": "OrgCluster",
    "threat-actor": "OrgCluster",
    "campaign": "OrgCampaign",
    "malware": "OrgSoftware",
    "tool": "OrgSoftware",
    "report": "Report",
    "grouping": "Report",
    "indicator": "Indicator",
    "sighting": "Sighting",
    "incident": "Incident",
}
OBSERVABLE = "Observable"
ALL_LABELS = (*sorted(set(ORG_LABELS.values())), OBSERVABLE)

# ATT&CK node label an org object of this STIX type may stand for (same STIX id / ATT&CK id).
ATTACK_KIND = {
    "attack-pattern": "Technique",
    "intrusion-set": "Group",
    "malware": "Software",
    "tool": "Software",
    "campaign": "Campaign",
}

# STIX relationship type -> relationship type. Others are counted and skipped.
REL_TYPES: dict[str, str] = {
    "uses": "USES",
    "indicates": "INDICATES",
    "attributed-to": "ATTRIBUTED_TO",
    "based-on": "BASED_ON",
    "related-to": "RELATED_TO",
    "derived-from": "DERIVED_FROM",
    "variant-of": "VARIANT_OF",
    "delivers": "DELIVERS",
    "drops": "DROPS",
    "downloads": "DOWNLOADS",
    "communicates-with": "COMMUNICATES_WITH",
    "duplicate-of": "DUPLICATE_OF",
    "targets": "TARGETS",
}
# Relationship types ttpgraph adds itself.
OWN_REL_TYPES = ("REFERS_TO", "SIGHTING_OF", "OBSERVED", "SAME_AS")
ALL_REL_TYPES = (*sorted(set(REL_TYPES.values())), *OWN_REL_TYPES)

# STIX Cyber-observable types (2.1) and the custom ones OpenCTI exports.
SCO_TYPES = {
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
    "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process",
    "software", "url", "user-account", "windows-registry-key", "x509-certificate",
    "hostname", "cryptocurrency-wallet", "user-agent", "text", "phone-number", "bank-account",
    "credential", "tracking-number", "payment-card", "media-content", "cryptographic-key",
}  # fmt: skip
# Objects read for names or not imported at all (counted, never an error).
IGNORED_TYPES = {
    "identity", "location", "marking-definition", "extension-definition", "language-content",
    "course-of-action", "vulnerability", "infrastructure", "note", "opinion", "malware-analysis",
    "kill-chain-phase", "x-mitre-collection", "x-mitre-matrix", "x-mitre-tactic",
    "x-mitre-data-source", "x-mitre-data-component", "x-mitre-detection-strategy",
    "x-mitre-analytic", "x-mitre-asset",
}  # fmt: skip

ATTACK_SOURCES = {"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"}
OPENCTI_EXT = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
OPENCTI_SCO_EXT = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
# "PowerShell - T1059.001" (MISP galaxy values and misp-stix names), "T1059.001 - PowerShell".
_ID_IN_NAME = re.compile(r"(?:^|\s-\s)([TGSC]\d{4}(?:\.\d{3})?)(?:\s-\s|\s*$)")
_STIX_ID = re.compile(r"^([a-z0-9][a-z0-9-]*)--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")  # fmt: skip
MAX_WARNINGS = 200
BATCH = 5000

SCHEMA = [
    "CREATE CONSTRAINT intel_source_name IF NOT EXISTS "
    "FOR (n:IntelSource) REQUIRE n.source IS UNIQUE",
    "CREATE INDEX org_object_source IF NOT EXISTS FOR (n:OrgObject) ON (n.source)",
    "CREATE INDEX org_object_stix_id IF NOT EXISTS FOR (n:OrgObject) ON (n.stix_id)",
    "CREATE INDEX org_object_name IF NOT EXISTS FOR (n:OrgObject) ON (n.name)",
    # IOC lookup: an indicator's or observable's first value (lower-cased) as ioc_key; the rare
    # IOC with several values is flagged ioc_multi and its values list is read.
    "CREATE INDEX org_object_ioc_key IF NOT EXISTS FOR (n:OrgObject) ON (n.ioc_key)",
    "CREATE INDEX org_object_ioc_multi IF NOT EXISTS FOR (n:OrgObject) ON (n.ioc_multi)",
]
# IOCs imported before ioc_key existed get it once (a no-op afterwards).
_IOC_KEYS = (
    "MATCH (n:OrgObject) WHERE (n:Indicator OR n:Observable) AND n.ioc_key IS NULL "
    "AND size(coalesce(n.values, [])) > 0 "
    "SET n.ioc_key = n.values[0], "
    "n.ioc_multi = CASE WHEN size(n.values) > 1 THEN true ELSE null END"
)


# ---------------------------------------------------------------- rows


@dataclass
class IntelRows:
    """One import, validated, on its way to the graph: rows are held in batches of
    :data:`BATCH` and written to :attr:`store` (a staged import) as each fills, nodes before the
    relationships that need them; :meth:`flush` writes the rest."""

    source: str
    flavour: str
    file: str | None = None
    sha256: str | None = None
    # label -> rows not written yet
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    # (relationship type, source is a small node, "small" | "bulk" | "attack") -> rows
    # {src: org key, dst: org key or ATT&CK stix id, props} not written yet
    edges: dict[tuple[str, bool, str], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    same_as: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    link_attack_ids: bool = False
    store: StagedIntel | None = None
    node_counter: Counter[str] = field(default_factory=Counter)
    edge_counter: Counter[str] = field(default_factory=Counter)
    _small_keys: set[str] = field(default_factory=set)
    _edge_seen: set[bytes] = field(default_factory=set)

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("... more warnings left out")

    def add_node(self, label: str, props: dict[str, Any]) -> None:
        if label not in ALL_LABELS:  # the allow-list is the only source of labels
            raise ValueError(f"label {label!r} not allowed")
        if label not in BULK_LABELS:
            self._small_keys.add(props["key"])
        self.node_counter[label] += 1
        group = self.nodes[label]
        group.append(props)
        if self.store is not None and len(group) >= BATCH:
            self._write_nodes(label)

    def add_edge(self, rtype: str, src: str, dst: Endpoint, props: dict[str, Any]) -> None:
        if rtype not in ALL_REL_TYPES:
            raise ValueError(f"relationship type {rtype!r} not allowed")
        seen = hashlib.blake2b(
            "\0".join((rtype, src, dst.ref, props.get("stix_id") or "")).encode(),
            digest_size=16,
        ).digest()
        if seen in self._edge_seen:
            return
        self._edge_seen.add(seen)
        full: dict[str, Any] = {"revoked": False, "deprecated": False, **props}
        full.update(source=self.source, org=True)
        row = {"src": src, "dst": dst.ref, "props": full}
        if dst.kind == "attack":
            where = "attack"
        else:
            where = "bulk" if dst.label in BULK_LABELS else "small"
        group_key = (rtype, src in self._small_keys, where)
        self.edge_counter[rtype] += 1
        group = self.edges[group_key]
        group.append(row)
        if self.store is not None and len(group) >= BATCH:
            self._write_all_nodes()
            self._write_edges(group_key)

    def _write_nodes(self, label: str) -> None:
        assert self.store is not None
        rows = self.nodes.pop(label, [])
        if rows:
            self.store.write_nodes(label, [ioc_keys(label, r) for r in rows])

    def _write_all_nodes(self) -> None:
        for label in list(self.nodes):
            self._write_nodes(label)

    def _write_edges(self, key: tuple[str, bool, str]) -> None:
        assert self.store is not None
        rows = self.edges.pop(key, [])
        if rows:
            rtype, src_small, where = key
            self.store.write_edges(rtype, src_small=src_small, dst=where, rows=rows)

    def flush(self) -> None:
        """Write what is held (nodes first)."""
        self._write_all_nodes()
        for key in list(self.edges):
            self._write_edges(key)

    def node_counts(self) -> dict[str, int]:
        return {label: n for label, n in sorted(self.node_counter.items()) if n}

    def edge_counts(self) -> dict[str, int]:
        return {rtype: n for rtype, n in sorted(self.edge_counter.items()) if n}


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "org" (key of an OrgObject) or "attack" (stix_id of an ATT&CK node)
    ref: str
    label: str  # what it is: OrgCluster, Technique, ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _one_line(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _items(value: Any) -> list[Any]:
    """A list field as a list (anything else - missing, a string, a number - as empty)."""
    return value if isinstance(value, list) else []


def _strs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def _stamp(value: Any) -> str | None:
    """A STIX timestamp as text (stix2 objects hold datetimes)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _key(source: str, stix_id: str) -> str:
    return f"{source}|{stix_id}"


# ---------------------------------------------------------------- reading files


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


# ---------------------------------------------------------------- ATT&CK lookups


class AttackIndex:
    """The ATT&CK nodes an import refers to, looked up once (by STIX id and by ATT&CK id)."""

    def __init__(self, graph: Graph, stix_ids: Iterable[str], attack_ids: Iterable[str]):
        rows = graph.read(
            Q.intel_attack_lookup,
            stix_ids=sorted(set(stix_ids)),
            attack_ids=sorted({a.upper() for a in attack_ids}),
        )
        self.by_stix: dict[str, dict[str, Any]] = {r["stix_id"]: r for r in rows}
        self.by_attack: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            if r["attack_id"]:
                self.by_attack[r["attack_id"].upper()].append(r)

    def current(self, row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """A revoked object's replacement (and a note), else the object itself."""
        if row["revoked"] and row["replaced_by"]:
            new = {
                "stix_id": row["replaced_by"],
                "attack_id": row["new_attack_id"],
                "name": row["new_name"],
                "kind": row["kind"],
                "revoked": False,
                "deprecated": False,
            }
            return new, f"{row['attack_id']} was revoked; replaced by {new['attack_id']}"
        if row["revoked"] or row["deprecated"]:
            state = "revoked" if row["revoked"] else "deprecated"
            return row, f"{row['attack_id']} is {state} in ATT&CK (linked, but left out of answers)"
        return row, None

    def find(self, kind: str, *, stix_id: str | None, attack_ids: list[str]) -> tuple[
        dict[str, Any] | None, str | None
    ]:  # fmt: skip
        """The ATT&CK node of this kind (Technique, Group, Software, Campaign), if any."""
        if stix_id and stix_id in self.by_stix and self.by_stix[stix_id]["kind"] == kind:
            return self.current(self.by_stix[stix_id])
        for aid in attack_ids:
            rows = [r for r in self.by_attack.get(aid.upper(), []) if r["kind"] == kind]
            if rows:
                rows.sort(key=lambda r: (bool(r["revoked"]), bool(r["deprecated"])))
                return self.current(rows[0])
        return None, None


def _ext(obj: dict[str, Any], name: str) -> dict[str, Any]:
    exts = obj.get("extensions")
    if isinstance(exts, dict) and isinstance(exts.get(name), dict):
        return exts[name]  # type: ignore[no-any-return]
    return {}


def attack_ids_of(obj: dict[str, Any]) -> list[str]:
    """ATT&CK ids an object claims: external references (mitre-attack, mitre-mobile-attack,
    mitre-ics-attack), OpenCTI's ``x_mitre_id``, or a MISP-style name ("PowerShell - T1059.001")."""
    out: list[str] = []
    for ref in _items(obj.get("external_references")):
        if isinstance(ref, dict) and ref.get("source_name") in ATTACK_SOURCES:
            ext = _str(ref.get("external_id"))
            if ext:
                out.append(ext.strip().upper())
    for value in (obj.get("x_mitre_id"), _ext(obj, OPENCTI_EXT).get("x_mitre_id")):
        text = _str(value)
        if text:
            out.append(text.strip().upper())
    name = _str(obj.get("name"))
    if name:
        m = _ID_IN_NAME.search(name.strip())
        if m:
            out.append(m.group(1).upper())
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- IOC values


# STIX patterns are parsed by a recursive (ANTLR) parser: a pattern nested 3,000 deep raised
# RecursionError (a 500). Real indicators nest a few levels and stay under a few KB.
MAX_PATTERN_CHARS = 64 * 1024
MAX_PATTERN_NESTING = 50


def pattern_problem(pattern: str) -> str | None:
    """Why a STIX pattern is refused before it is parsed (too long, nested too deeply), or
    None. One linear pass; quoted strings are skipped."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"is longer than {MAX_PATTERN_CHARS // 1024} KB"
    depth = 0
    quoted = escaped = False
    for c in pattern:
        if quoted:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == "'":
                quoted = False
        elif c == "'":
            quoted = True
        elif c in "([":
            depth += 1
            if depth > MAX_PATTERN_NESTING:
                return f"nests brackets deeper than {MAX_PATTERN_NESTING} levels"
        elif c in ")]":
            depth -= 1
    return None


def pattern_values(pattern: str) -> list[str]:
    """The literal values an indicator's STIX pattern compares with ``=`` or ``IN`` (lower-cased):
    ``[ipv4-addr:value = '203.0.113.7']`` -> ``['203.0.113.7']``; object types are left out."""
    literal = simple_pattern(pattern)
    if literal is not None:  # the common one-comparison pattern, without the ANTLR parser
        return [literal.strip().lower()] if literal.strip() else []
    from stix2patterns.v21.pattern import Pattern

    if pattern_problem(pattern):
        return []
    try:
        comparisons = Pattern(pattern).inspect().comparisons
    except Exception:  # an invalid pattern was refused earlier; a non-STIX one has no values
        return []
    out: list[str] = []
    for _obj_type, items in comparisons.items():
        for path, op, value in items:
            if op not in ("=", "IN") or (path and path[-1] in ("type", "resolves_to_refs")):
                continue
            for v in re.findall(r"'((?:[^'\\]|\\.)*)'", str(value)):
                v = v.replace("\\'", "'").replace("\\\\", "\\").strip()
                if v:
                    out.append(v.lower())
    return list(dict.fromkeys(out))


def observable_values(obj: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(display value, lookup values) of a STIX cyber-observable."""
    values: list[str] = []
    main = None
    for k in ("value", "name", "key", "path", "user_id", "account_login", "number", "subject"):
        v = obj.get(k)
        if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip():
            main = main or str(v)
            values.append(str(v))
    hashes = obj.get("hashes")
    if isinstance(hashes, dict):
        for h in hashes.values():
            if isinstance(h, str) and h.strip():
                main = main or h
                values.append(h)
    return main, list(dict.fromkeys(v.strip().lower() for v in values))


# ---------------------------------------------------------------- STIX bundles


def _flavour_of(obj: dict[str, Any]) -> str | None:
    """The exporter an object betrays (``opencti``, ``misp``, ``workbench``), if any."""
    if OPENCTI_EXT in (obj.get("extensions") or {}) or any(k.startswith("x_opencti_") for k in obj):
        return "opencti"
    if any(str(label).startswith("misp:") for label in _items(obj.get("labels"))) or any(
        k.startswith("x_misp_") for k in obj
    ):
        return "misp"
    if obj.get("type") == "x-mitre-collection" or "x_mitre_attack_spec_version" in obj:
        return "workbench"
    return None


def _validate(obj: Any, i: int, version: str | None) -> dict[str, Any]:
    """One STIX object checked with ``stix2`` (custom content allowed); InvalidInput naming it."""
    import stix2
    from stix2.exceptions import STIXError

    if not isinstance(obj, dict):
        raise InvalidInput(f"objects[{i}]: expected a STIX object, got {type(obj).__name__}")
    oid, otype = obj.get("id"), obj.get("type")
    if not isinstance(otype, str) or not otype:
        raise InvalidInput(f"objects[{i}] ({oid}): 'type' is missing")
    if not isinstance(oid, str) or not _STIX_ID.match(oid) or not oid.startswith(otype + "--"):
        raise InvalidInput(f"objects[{i}] ({oid}): 'id' must be '{otype}--<UUID>'")
    pattern = obj.get("pattern")
    if isinstance(pattern, str):
        problem = pattern_problem(pattern)
        if problem:
            raise InvalidInput(f"objects[{i}] ({oid}): pattern {problem}")
    if plainly_valid(obj):
        return obj
    try:
        stix2.parse(obj, allow_custom=True, version=obj.get("spec_version") or version)
    except (STIXError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"objects[{i}] ({oid}): {_one_line(exc)}") from None
    except RecursionError:
        raise InvalidInput(f"objects[{i}] ({oid}): nested too deeply to validate") from None
    return obj


def _common(obj: dict[str, Any], rows: IntelRows, names: dict[str, str]) -> dict[str, Any]:
    ext = _ext(obj, OPENCTI_EXT)
    score = obj.get("x_opencti_score", ext.get("score", _ext(obj, OPENCTI_SCO_EXT).get("score")))
    urls = [
        r["url"]
        for r in obj.get("external_references") or []
        if isinstance(r, dict) and isinstance(r.get("url"), str)
    ]
    props: dict[str, Any] = {
        "key": _key(rows.source, obj["id"]),
        "stix_id": obj["id"],
        "stix_type": obj["type"],
        "name": _str(obj.get("name")) or obj["id"],
        "description": _str(obj.get("description")) or _str(ext.get("description")),
        "created": _stamp(obj.get("created")),
        "modified": _stamp(obj.get("modified")),
        "revoked": bool(obj.get("revoked", False)),
        "deprecated": bool(obj.get("x_mitre_deprecated", False)),
        "confidence": obj.get("confidence") if isinstance(obj.get("confidence"), int) else None,
        "score": score if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        "stix_labels": _strs(obj.get("labels")),
        "reference_urls": urls,
        "created_by": names.get(obj.get("created_by_ref") or ""),
        "source": rows.source,
        "org": True,
        "imported_at": _now(),
    }
    return {k: v for k, v in props.items() if v is not None}


_ATTACK_PREFIXES = tuple(f"{t}--" for t in ATTACK_KIND)
_LABEL_CODES = {label: i for i, label in enumerate(ALL_LABELS)}


@dataclass
class _Scan:
    """What the first pass over a bundle learns: how many objects, which ids occur twice, the
    exporter, the ATT&CK objects it may refer to, the identities' names, what is sighted."""

    count: int = 0
    ids: set[int] = field(default_factory=set)
    dups: set[int] = field(default_factory=set)
    flavours: set[str] = field(default_factory=set)
    attack_refs: set[str] = field(default_factory=set)
    claimed: list[str] = field(default_factory=list)
    identities: list[tuple[int, str, str, str]] = field(default_factory=list)
    sighted: set[str] = field(default_factory=set)
    latest: dict[str, int] = field(default_factory=dict)  # only for ids that occur twice

    @property
    def flavour(self) -> str:
        for f in ("opencti", "misp", "workbench"):
            if f in self.flavours:
                return f
        return "stix"

    def keep(self, i: int, oid: str) -> bool:
        """Whether object ``i`` is the version of its id that counts (the latest)."""
        return hash(oid) not in self.dups or self.latest.get(oid) == i


def _scan(objects: Iterable[Any]) -> _Scan:
    sc = _Scan()
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise InvalidInput(f"objects[{i}]: expected a STIX object, got {type(obj).__name__}")
        oid = obj.get("id")
        if not isinstance(oid, str):
            raise InvalidInput(f"objects[{i}]: 'id' is missing")
        h = hash(oid)
        if h in sc.ids:
            sc.dups.add(h)
        else:
            sc.ids.add(h)
        flavour = _flavour_of(obj)
        if flavour:
            sc.flavours.add(flavour)
        otype = obj.get("type")
        refs = [oid, obj.get("source_ref"), obj.get("target_ref"), obj.get("sighting_of_ref")]
        refs += _items(obj.get("object_refs")) + _items(obj.get("observed_data_refs"))
        for ref in refs:
            if isinstance(ref, str) and ref.startswith(_ATTACK_PREFIXES):
                sc.attack_refs.add(ref)
        if otype in ATTACK_KIND:
            sc.claimed.extend(attack_ids_of(obj))
        elif otype == "identity" and isinstance(obj.get("name"), str):
            sc.identities.append((i, oid, str(obj.get("modified") or ""), obj["name"]))
        elif otype == "sighting" and isinstance(obj.get("sighting_of_ref"), str):
            sc.sighted.add(obj["sighting_of_ref"])
        sc.count += 1
    return sc


def _resolve_versions(sc: _Scan, objects: Iterable[Any]) -> None:
    """For the ids that occur more than once: which occurrence is the latest version."""
    best: dict[str, tuple[int, str]] = {}
    for i, obj in enumerate(objects):
        oid = obj["id"]
        if hash(oid) not in sc.dups:
            continue
        modified = str(obj.get("modified") or "")
        prev = best.get(oid)
        if prev is None or modified >= prev[1]:
            best[oid] = (i, modified)
    sc.latest = {oid: i for oid, (i, _) in best.items()}


class _Endpoints(MutableMapping[str, list[Endpoint]]):
    """STIX id -> what it stands for in the graph. The organisation's own nodes (a million IOCs)
    are kept as a label code, their key being the source and the id."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.org: dict[str, int] = {}
        self.other: dict[str, list[Endpoint]] = {}

    def __getitem__(self, ref: str) -> list[Endpoint]:
        code = self.org.get(ref)
        if code is not None:
            return [Endpoint("org", _key(self.source, ref), ALL_LABELS[code])]
        return self.other[ref]

    def __setitem__(self, ref: str, value: list[Endpoint]) -> None:
        self.org.pop(ref, None)
        self.other.pop(ref, None)
        if len(value) == 1 and value[0].kind == "org" and value[0].ref == _key(self.source, ref):
            self.org[ref] = _LABEL_CODES[value[0].label]
        else:
            self.other[ref] = value

    def __delitem__(self, ref: str) -> None:
        if self.org.pop(ref, None) is None:
            del self.other[ref]

    def __iter__(self) -> Iterator[str]:
        yield from self.org
        yield from self.other

    def __len__(self) -> int:
        return len(self.org) + len(self.other)

    def __contains__(self, ref: object) -> bool:
        return ref in self.org or ref in self.other


class _Spill:
    """Objects set aside for after the nodes (relationships, sightings...), in a temporary file
    rather than in memory."""

    def __init__(self) -> None:
        self.fh = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, i: int, obj: dict[str, Any]) -> None:
        self.fh.write(orjson.dumps([i, obj]) + b"\n")
        self.count += 1

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        self.fh.seek(0)
        for line in self.fh:
            i, obj = orjson.loads(line)
            yield i, obj

    def close(self) -> None:
        self.fh.close()


def stix_import(
    graph: Graph,
    objects: Callable[[], Iterable[Any]],
    *,
    source: str | None,
    file: str | None = None,
    sha256: str | None = None,
    spec_version: str | None = None,
    link_attack_ids: bool = False,
) -> tuple[IntelRows, bool]:
    """A STIX bundle's objects (``objects()`` gives them from the start: a list, or a stream
    read again) -> a staged import, switched in once complete. Refuses the import on the first
    invalid object (nothing of it visible). Returns the rows' counts and whether a previous
    import of the source was replaced."""
    scan = _scan(objects())
    if not scan.count:
        raise InvalidInput(f"{file or 'bundle'}: the bundle holds no objects")
    if scan.dups:
        _resolve_versions(scan, objects())
    flavour = scan.flavour
    label = source or (f"{flavour}-export {Path(file).name}" if file else f"{flavour}-export")
    rows = IntelRows(
        source=_check_source(label),
        flavour=flavour,
        file=file,
        sha256=sha256,
        link_attack_ids=link_attack_ids,
    )
    index = AttackIndex(graph, scan.attack_refs, scan.claimed)
    names: dict[str, str] = {}
    for i, oid, _modified, name in scan.identities:
        if scan.keep(i, oid):
            names[oid] = name
    with staged_import(graph, rows) as store:
        rows.store = store
        _stix_write(rows, objects(), scan, index, names, graph, spec_version)
        if not rows.node_counter:
            raise InvalidInput(f"{file}: {NOTHING}")
        replaced = switch_in(graph, rows, store)
    return rows, replaced


def _stix_write(
    rows: IntelRows,
    objects: Iterable[Any],
    scan: _Scan,
    index: AttackIndex,
    names: dict[str, str],
    graph: Graph,
    spec_version: str | None,
) -> None:
    """The second pass: every object validated in order, nodes written as they come,
    relationships and sightings set aside and written once every node is."""
    labels: dict[str, str] = {}
    endpoints = _Endpoints(rows.source)
    relationships, sightings = _Spill(), _Spill()
    reports: list[tuple[int, dict[str, Any]]] = []
    observed: list[tuple[int, dict[str, Any]]] = []
    try:
        for i, obj in enumerate(objects):
            if not scan.keep(i, obj["id"]):
                continue
            if obj["id"] in scan.sighted:
                labels[obj["id"]] = str(obj.get("name") or obj.get("value") or obj["id"])
            otype = obj.get("type")
            if otype in IGNORED_TYPES or (
                isinstance(otype, str) and otype.startswith("x-opencti-")
            ):
                rows.skipped[f"{otype} (not imported)"] += 1
                continue
            if obj["id"] in index.by_stix:
                # ATT&CK's own object (Workbench and MISP bundles carry them verbatim).
                hit = index.by_stix[obj["id"]]
                if hit["kind"] in ("Technique", "Group", "Software", "Campaign"):
                    node, _ = index.current(hit)
                    endpoints[obj["id"]] = [Endpoint("attack", node["stix_id"], node["kind"])]
                    rows.skipped[f"{otype} (ATT&CK's own, linked)"] += 1
                else:
                    rows.skipped[f"{otype} (ATT&CK's own, not imported)"] += 1
                continue
            _validate(obj, i, spec_version)
            if otype == "relationship":
                relationships.add(i, obj)
            elif otype == "sighting":
                sightings.add(i, obj)
            elif otype == "attack-pattern":
                found, note = index.find("Technique", stix_id=None, attack_ids=attack_ids_of(obj))
                if found is None:
                    rows.warn(
                        f"objects[{i}] ({obj['id']}): attack-pattern {obj.get('name')!r} is not "
                        "an ATT&CK technique in the graph (no known STIX id or ATT&CK id); "
                        "its relationships are skipped"
                    )
                    rows.skipped["attack-pattern (not in ATT&CK)"] += 1
                    continue
                if note:
                    rows.warn(f"objects[{i}] ({obj['id']}): {note}")
                endpoints[obj["id"]] = [Endpoint("attack", found["stix_id"], "Technique")]
                rows.skipped["attack-pattern (linked to ATT&CK)"] += 1
            elif otype == "observed-data":
                observed.append((i, obj))
            elif otype in ORG_LABELS:
                _stix_node(rows, obj, index, names, endpoints)
                if otype in ("report", "grouping"):
                    reports.append((i, obj))
            elif otype in SCO_TYPES or (
                "created" not in obj and ("value" in obj or "hashes" in obj or "name" in obj)
            ):
                _observable_node(rows, obj, endpoints)
            else:
                rows.skipped[f"{otype} (not imported)"] += 1

        for _i, obj in observed:  # observed-data: its observables stand in for it
            targets: list[Endpoint] = []
            for ref in obj.get("object_refs") or []:
                targets.extend(endpoints.get(ref, []))
            if isinstance(obj.get("objects"), dict):  # STIX 2.0: observables embedded
                for k, sco in obj["objects"].items():
                    if isinstance(sco, dict) and isinstance(sco.get("type"), str):
                        sub = {
                            **sco,
                            "id": f"{sco['type']}--{uuid.uuid5(NAMESPACE, obj['id'] + k)}",
                        }
                        _observable_node(rows, sub, endpoints)
                        targets.extend(endpoints[sub["id"]])
            endpoints[obj["id"]] = targets

        for _i, obj in reports:
            src = endpoints[obj["id"]][0]
            for ref in obj.get("object_refs") or []:
                if ref.startswith("relationship--") and ref not in endpoints:
                    rows.skipped["report reference to a relationship"] += 1
                    continue
                for dst in _targets(rows, endpoints, index, ref):
                    if dst.ref != src.ref:
                        rows.add_edge("REFERS_TO", src.ref, dst, {})
        for i, obj in sightings:
            _sighting(rows, i, obj, endpoints, index, names, labels)
        part: list[tuple[int, dict[str, Any]]] = []
        for item in relationships:
            part.append(item)
            if len(part) >= BATCH:
                _relationships(rows, part, endpoints, index, graph)
                part = []
        _relationships(rows, part, endpoints, index, graph)
    finally:
        relationships.close()
        sightings.close()


def _targets(
    rows: IntelRows, endpoints: MutableMapping[str, list[Endpoint]], index: AttackIndex, ref: str
) -> list[Endpoint]:
    if ref in endpoints:
        return endpoints[ref]
    hit = index.by_stix.get(ref)
    if hit is not None and hit["kind"] in ("Technique", "Group", "Software", "Campaign"):
        node, _ = index.current(hit)
        return [Endpoint("attack", node["stix_id"], node["kind"])]
    rows.skipped["reference to an object not imported"] += 1
    return []


def _stix_node(
    rows: IntelRows,
    obj: dict[str, Any],
    index: AttackIndex,
    names: dict[str, str],
    endpoints: MutableMapping[str, list[Endpoint]],
) -> None:
    otype = obj["type"]
    label = ORG_LABELS[otype]
    props = _common(obj, rows, names)
    ext = _ext(obj, OPENCTI_EXT)
    if label in ("OrgCluster", "OrgCampaign", "OrgSoftware"):
        aliases = (
            _strs(obj.get("aliases"))
            + _strs(obj.get("x_mitre_aliases"))
            + _strs(obj.get("x_opencti_aliases"))
            + _strs(ext.get("aliases"))
        )
        props["aliases"] = [a for a in dict.fromkeys(aliases) if a != props["name"]]
        claimed = attack_ids_of(obj)
        if claimed:
            props["external_id"] = claimed[0]
        kind = ATTACK_KIND.get(otype, "Group")  # threat-actor: a group too
        node, _ = index.find(kind, stix_id=None, attack_ids=claimed)
        if node is not None:
            # The export says this is ATT&CK's G0016 / S0154 / C0024: remembered, and linked
            # SAME_AS only when asked (link_attack_ids) - attribution is the analyst's call.
            props["attack_ref"] = node["attack_id"]
            if rows.link_attack_ids:
                rows.same_as.append({"key": props["key"], "attack_stix_id": node["stix_id"]})
        for k in ("first_seen", "last_seen"):
            if obj.get(k):
                props[k] = _stamp(obj[k])
        for k in ("goals", "objective", "resource_level", "primary_motivation", "is_family"):
            v = obj.get(k)
            if isinstance(v, (str, bool)) or (isinstance(v, list) and _strs(v)):
                props[k] = v
        if label == "OrgSoftware":
            props["software_type"] = otype
            props["platforms"] = _strs(obj.get("x_mitre_platforms"))
            props["types"] = _strs(obj.get("malware_types") or obj.get("tool_types"))
    elif label == "Report":
        props["kind"] = otype
        props["published"] = _stamp(obj.get("published"))
        props["report_types"] = _strs(obj.get("report_types")) or _strs(obj.get("context"))
    elif label == "Indicator":
        pattern = obj.get("pattern")
        props["pattern"] = pattern
        props["pattern_type"] = obj.get("pattern_type") or "stix"
        props["valid_from"] = _stamp(obj.get("valid_from"))
        props["valid_until"] = _stamp(obj.get("valid_until"))
        props["indicator_types"] = _strs(obj.get("indicator_types"))
        props["main_observable_type"] = _str(
            obj.get("x_opencti_main_observable_type") or ext.get("main_observable_type")
        )
        values = pattern_values(pattern) if props["pattern_type"] == "stix" and pattern else []
        props["values"] = values
        props["value"] = values[0] if values else None
    elif label == "Incident":
        for k in ("first_seen", "last_seen"):
            if obj.get(k):
                props[k] = _stamp(obj[k])
        for k in ("incident_type", "severity", "objective"):
            if _str(obj.get(k)):
                props[k] = obj[k]
        if _str(obj.get("source")):
            props["incident_source"] = obj["source"]
    rows.add_node(label, {k: v for k, v in props.items() if v is not None})
    endpoints[obj["id"]] = [Endpoint("org", props["key"], label)]


def _observable_node(
    rows: IntelRows, obj: dict[str, Any], endpoints: MutableMapping[str, list[Endpoint]]
) -> None:
    main, values = observable_values(obj)
    ext = _ext(obj, OPENCTI_SCO_EXT)
    score = obj.get("x_opencti_score", ext.get("score"))
    props = {
        "key": _key(rows.source, obj["id"]),
        "stix_id": obj["id"],
        "stix_type": obj["type"],
        "name": main or obj["id"],
        "value": main,
        "values": values,
        "description": _str(obj.get("x_opencti_description")) or _str(ext.get("description")),
        "score": score if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        "revoked": False,
        "deprecated": False,
        "source": rows.source,
        "org": True,
        "imported_at": _now(),
    }
    rows.add_node(OBSERVABLE, {k: v for k, v in props.items() if v is not None})
    endpoints[obj["id"]] = [Endpoint("org", props["key"], OBSERVABLE)]


def _sighting(
    rows: IntelRows,
    i: int,
    obj: dict[str, Any],
    endpoints: MutableMapping[str, list[Endpoint]],
    index: AttackIndex,
    names: dict[str, str],
    labels: dict[str, str],
) -> None:
    props = _common(obj, rows, names)
    target = obj.get("sighting_of_ref") or ""
    props["name"] = _str(obj.get("name")) or f"sighting of {labels.get(target, target)}"
    for k in ("first_seen", "last_seen"):
        if obj.get(k):
            props[k] = _stamp(obj[k])
    if isinstance(obj.get("count"), int):
        props["count"] = obj["count"]
    props["where_sighted"] = [names.get(r, r) for r in _strs(obj.get("where_sighted_refs"))]
    rows.add_node("Sighting", props)
    src = Endpoint("org", props["key"], "Sighting")
    endpoints[obj["id"]] = [src]
    for dst in _targets(rows, endpoints, index, obj["sighting_of_ref"]):
        rows.add_edge("SIGHTING_OF", src.ref, dst, {})
    for ref in _strs(obj.get("observed_data_refs")):
        for dst in _targets(rows, endpoints, index, ref):
            rows.add_edge("OBSERVED", src.ref, dst, {})


def _relationships(
    rows: IntelRows,
    rels: list[tuple[int, dict[str, Any]]],
    endpoints: MutableMapping[str, list[Endpoint]],
    index: AttackIndex,
    graph: Graph,
) -> None:
    between_attack: list[dict[str, Any]] = []
    for i, obj in rels:
        rtype = REL_TYPES.get(str(obj.get("relationship_type")))
        if rtype is None:
            rows.skipped[f"relationship {obj.get('relationship_type')} (not imported)"] += 1
            continue
        srcs = _targets(rows, endpoints, index, obj["source_ref"])
        dsts = _targets(rows, endpoints, index, obj["target_ref"])
        if not srcs or not dsts:
            continue
        props = {
            "stix_id": obj["id"],
            "description": _str(obj.get("description")),
            "created": _stamp(obj.get("created")),
            "modified": _stamp(obj.get("modified")),
            "start_time": _stamp(obj.get("start_time")),
            "stop_time": _stamp(obj.get("stop_time")),
            "confidence": obj.get("confidence") if isinstance(obj.get("confidence"), int) else None,
            "revoked": bool(obj.get("revoked", False)),
            "deprecated": bool(obj.get("x_mitre_deprecated", False)),
        }
        props = {k: v for k, v in props.items() if v is not None}
        for src in srcs:
            if src.kind == "attack":
                between_attack.append({"i": i, "id": obj["id"], "src": src, "dsts": dsts})
                continue
            for dst in dsts:
                rows.add_edge(rtype, src.ref, dst, props)
    if not between_attack:
        return
    # A relationship from an ATT&CK object: MITRE's own (already loaded) or the organisation's
    # addition to MITRE's object, which ttpgraph never writes.
    known = {
        r["id"]
        for r in graph.read(
            Q.intel_known_relationships, stix_ids=sorted({b["id"] for b in between_attack})
        )
    }
    for b in between_attack:
        if b["id"] in known:
            rows.skipped["relationship (ATT&CK's own)"] += 1
        else:
            rows.skipped["relationship from an ATT&CK object (not imported)"] += 1
            rows.warn(
                f"objects[{b['i']}] ({b['id']}): starts at ATT&CK's own object "
                f"{b['src'].ref}; ttpgraph never adds to MITRE's objects - give the "
                "organisation's knowledge its own intrusion set and link it with "
                "'ttpgraph intel link'"
            )


# ---------------------------------------------------------------- MISP events

# MISP attribute type -> (STIX cyber-observable type, pattern path).
MISP_TYPES: dict[str, tuple[str, str]] = {
    "ip-src": ("ipv4-addr", "value"),
    "ip-dst": ("ipv4-addr", "value"),
    "domain": ("domain-name", "value"),
    "hostname": ("domain-name", "value"),
    "url": ("url", "value"),
    "uri": ("url", "value"),
    "link": ("url", "value"),
    "email": ("email-addr", "value"),
    "email-src": ("email-addr", "value"),
    "email-dst": ("email-addr", "value"),
    "md5": ("file", "hashes.MD5"),
    "sha1": ("file", "hashes.'SHA-1'"),
    "sha256": ("file", "hashes.'SHA-256'"),
    "sha512": ("file", "hashes.'SHA-512'"),
    "filename": ("file", "name"),
    "mutex": ("mutex", "name"),
    "regkey": ("windows-registry-key", "key"),
    "mac-address": ("mac-addr", "value"),
    "AS": ("autonomous-system", "number"),
    "user-agent": ("user-agent", "value"),
}
_COMPOSITE_PARTS = {  # "filename|sha256" and friends: one MISP type per part
    "ip-dst|port": ("ip-dst", None),
    "ip-src|port": ("ip-src", None),
    "domain|ip": ("domain", "ip-dst"),
    "hostname|port": ("hostname", None),
}
_GALAXY_TECHNIQUE = re.compile(
    r"^misp-galaxy:mitre-(?:enterprise-attack-|mobile-attack-|ics-)?(?:attack-pattern|techniques)="
)
_GALAXY_GROUP = re.compile(
    r"^misp-galaxy:mitre-(?:enterprise-attack-|mobile-attack-)?intrusion-set="
)
_GALAXY_SOFTWARE = re.compile(
    r"^misp-galaxy:mitre-(?:enterprise-attack-|mobile-attack-)?(?:malware|tool)="
)
_GALAXY_ACTOR = re.compile(r"^misp-galaxy:threat-actor=")
_TAG_VALUE = re.compile(r'^[^=]+="(.*)"$')


def _misp_events(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "response" in data:
        data = data["response"]
    items = data if isinstance(data, list) else [data]
    events = []
    for n, item in enumerate(items):
        ev = item.get("Event") if isinstance(item, dict) else None
        if not isinstance(ev, dict):
            raise InvalidInput(f"{where}: item {n} has no 'Event' object")
        events.append(ev)
    if not events:
        raise InvalidInput(f"{where}: no MISP event in the file")
    return events


def _misp_list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{where}.{key}: must be a list, got {type(value).__name__}")
    return value


def _check_uuid(value: Any, where: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError):
        raise InvalidInput(f"{where}: 'uuid' must be a UUID, got {value!r}") from None


def _epoch(value: Any) -> str | None:
    try:
        return datetime.fromtimestamp(int(value), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _tag_value(tag: str) -> str:
    m = _TAG_VALUE.match(tag)
    return m.group(1) if m else tag.split("=", 1)[-1].strip('"')


def _misp_stix_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _misp_ioc(mtype: str, value: str) -> list[tuple[str, str, str]]:
    """(MISP type, STIX type, value) parts of one MISP attribute value."""
    if "|" in mtype:
        types = mtype.split("|")
        parts = value.split("|")
        if mtype in _COMPOSITE_PARTS:
            a, b = _COMPOSITE_PARTS[mtype]
            types = [a] + ([b] if b else [])
        out = []
        for t, v in zip(types, parts, strict=False):
            if t and t in MISP_TYPES and v.strip():
                out.extend(_misp_ioc(t, v))
        return out
    if mtype in MISP_TYPES:
        stype = MISP_TYPES[mtype][0]
        if stype == "ipv4-addr":
            with contextlib.suppress(ValueError):
                stype = "ipv6-addr" if ipaddress.ip_address(value.strip()).version == 6 else stype
        return [(mtype, stype, value.strip())]
    return [(mtype, f"x-misp-{mtype.lower()}", value.strip())]


def _misp_pattern(parts: list[tuple[str, str, str]]) -> str | None:
    terms = []
    for mtype, stype, value in parts:
        if mtype not in MISP_TYPES or stype == "user-agent":
            return None
        path = MISP_TYPES[mtype][1]
        if stype == "autonomous-system":
            if not value.upper().lstrip("AS").isdigit():
                return None
            terms.append(f"{stype}:{path} = {int(value.upper().lstrip('AS'))}")
        else:
            terms.append(f"{stype}:{path} = '{_misp_stix_escape(value)}'")
    return "[" + " AND ".join(terms) + "]" if terms else None


class _Galaxies:
    """ATT&CK and threat-actor galaxy tags of an event or an attribute."""

    def __init__(self, tags: list[str], clusters: list[dict[str, Any]]):
        self.techniques: list[str] = []
        self.groups: list[str] = []
        self.software: list[str] = []
        self.actors: list[dict[str, Any]] = []
        by_tag = {c.get("tag_name"): c for c in clusters if isinstance(c, dict)}
        for tag in dict.fromkeys([*tags, *(t for t in by_tag if isinstance(t, str))]):
            cluster: dict[str, Any] = by_tag.get(tag) or {}
            meta: dict[str, Any] = cluster["meta"] if isinstance(cluster.get("meta"), dict) else {}
            ext_ids = _strs(meta.get("external_id"))
            value = _tag_value(tag)
            m = _ID_IN_NAME.search(value)
            found = [e.upper() for e in ext_ids] or ([m.group(1).upper()] if m else [])
            if _GALAXY_TECHNIQUE.match(tag):
                self.techniques.extend(found or [value.strip().upper()])
            elif _GALAXY_GROUP.match(tag):
                self.groups.extend(found or [value])
            elif _GALAXY_SOFTWARE.match(tag):
                self.software.extend(found or [value])
            elif _GALAXY_ACTOR.match(tag):
                self.actors.append(
                    {
                        "name": str(cluster.get("value") or value),
                        "uuid": cluster.get("uuid"),
                        "aliases": _strs(meta.get("synonyms")),
                        "description": _str(cluster.get("description")),
                    }
                )


def _misp_tags(obj: dict[str, Any], where: str) -> tuple[list[str], list[dict[str, Any]]]:
    tags = []
    for n, t in enumerate(_misp_list(obj, "Tag", where)):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise InvalidInput(f"{where}.Tag[{n}]: a tag needs a 'name' string")
        tags.append(t["name"])
    clusters: list[dict[str, Any]] = []
    for g in _misp_list(obj, "Galaxy", where):
        if isinstance(g, dict):
            clusters.extend(c for c in _items(g.get("GalaxyCluster")) if isinstance(c, dict))
    return tags, clusters


def misp_rows(
    data: Any,
    graph: Graph,
    *,
    source: str | None,
    file: str | None = None,
    sha256: str | None = None,
    link_attack_ids: bool = False,
) -> IntelRows:
    """MISP event JSON (one event, a list, or a search response) -> rows."""
    where = file or "MISP JSON"
    events = _misp_events(data, where)
    label = source or (f"misp-event {Path(file).name}" if file else "misp-event")
    rows = IntelRows(
        source=_check_source(label),
        flavour="misp-json",
        file=file,
        sha256=sha256,
        link_attack_ids=link_attack_ids,
    )
    parsed = []
    wanted: set[str] = set()
    for e, ev in enumerate(events):
        at = f"Event[{e}]" if len(events) > 1 else "Event"
        ev_uuid = _check_uuid(ev.get("uuid"), at)
        info = _str(ev.get("info"))
        if info is None:
            raise InvalidInput(f"{at} ({ev_uuid}): 'info' must be a non-empty string")
        tags, clusters = _misp_tags(ev, at)
        galaxies = _Galaxies(tags, clusters)
        attrs: list[tuple[str, dict[str, Any], str | None]] = []
        raw_attrs = ev.get("Attribute") or []
        if not isinstance(raw_attrs, list):
            raise InvalidInput(f"{at}.Attribute: must be a list")
        attrs.extend((f"{at}.Attribute[{n}]", a, None) for n, a in enumerate(raw_attrs))
        for o, mobj in enumerate(_misp_list(ev, "Object", at)):
            if not isinstance(mobj, dict):
                raise InvalidInput(f"{at}.Object[{o}]: must be an object")
            if mobj.get("deleted") in (True, "1", 1):
                continue
            for n, a in enumerate(_misp_list(mobj, "Attribute", f"{at}.Object[{o}]")):
                attrs.append((f"{at}.Object[{o}].Attribute[{n}]", a, _str(mobj.get("name"))))
        checked = []
        for aw, a, obj_name in attrs:
            if not isinstance(a, dict):
                raise InvalidInput(f"{aw}: must be an object")
            a_uuid = _check_uuid(a.get("uuid"), aw)
            for k in ("type", "value"):
                if not _str(a.get(k)):
                    raise InvalidInput(f"{aw} ({a_uuid}): {k!r} must be a non-empty string")
            if a.get("deleted") in (True, "1", 1):
                continue
            a_tags, a_clusters = _misp_tags(a, aw)
            checked.append((aw, a, a_uuid, obj_name, _Galaxies(a_tags, a_clusters)))
            wanted.update(checked[-1][4].techniques)
        wanted.update(galaxies.techniques + galaxies.groups + galaxies.software)
        parsed.append((at, ev, ev_uuid, info, tags, galaxies, checked))
    index = AttackIndex(graph, [], wanted)

    for at, ev, ev_uuid, info, tags, galaxies, checked in parsed:
        org: dict[str, Any] = ev["Orgc"] if isinstance(ev.get("Orgc"), dict) else {}
        report_id = f"report--{ev_uuid}"
        report = {
            "key": _key(rows.source, report_id),
            "stix_id": report_id,
            "stix_type": "report",
            "kind": "misp-event",
            "name": info,
            "published": _str(ev.get("date")),
            "misp_event_id": str(ev.get("id")) if ev.get("id") is not None else None,
            "threat_level_id": str(ev.get("threat_level_id") or "") or None,
            "analysis": str(ev.get("analysis") or "") or None,
            "created_by": _str(org.get("name")),
            "tags": [t for t in tags if not t.startswith("misp-galaxy:")],
            "modified": _epoch(ev.get("timestamp")),
            "revoked": False,
            "deprecated": False,
            "source": rows.source,
            "org": True,
            "imported_at": _now(),
        }
        rows.add_node("Report", {k: v for k, v in report.items() if v is not None})
        src = _key(rows.source, report_id)
        for dst in _misp_attack_targets(rows, index, galaxies, at):
            rows.add_edge("REFERS_TO", src, dst, {})
        for actor in galaxies.actors:
            cid = f"intrusion-set--{actor['uuid'] or uuid.uuid5(NAMESPACE, actor['name'])}"
            key = _key(rows.source, cid)
            if not any(n["key"] == key for n in rows.nodes["OrgCluster"]):
                props = {
                    "key": key,
                    "stix_id": cid,
                    "stix_type": "intrusion-set",
                    "name": actor["name"],
                    "aliases": actor["aliases"],
                    "description": actor["description"],
                    "revoked": False,
                    "deprecated": False,
                    "source": rows.source,
                    "org": True,
                    "imported_at": _now(),
                }
                rows.add_node("OrgCluster", {k: v for k, v in props.items() if v is not None})
            rows.add_edge("REFERS_TO", src, Endpoint("org", key, "OrgCluster"), {})
        for aw, a, a_uuid, obj_name, a_galaxies in checked:
            _misp_attribute(rows, index, src, aw, a, a_uuid, obj_name, a_galaxies)
    return rows


def _misp_attack_targets(
    rows: IntelRows, index: AttackIndex, galaxies: _Galaxies, where: str
) -> list[Endpoint]:
    out = []
    for kind, ids in (
        ("Technique", galaxies.techniques),
        ("Group", galaxies.groups),
        ("Software", galaxies.software),
    ):
        for aid in dict.fromkeys(ids):
            node, note = index.find(kind, stix_id=None, attack_ids=[aid])
            if node is None:
                rows.warn(
                    f"{where}: galaxy tag {aid!r} is not an ATT&CK {kind.lower()} in the graph"
                )
                rows.skipped[f"galaxy tag (not in ATT&CK: {kind})"] += 1
                continue
            if note:
                rows.warn(f"{where}: {note}")
            out.append(Endpoint("attack", node["stix_id"], kind))
    return out


def _misp_attribute(
    rows: IntelRows,
    index: AttackIndex,
    report_key: str,
    where: str,
    a: dict[str, Any],
    a_uuid: str,
    obj_name: str | None,
    galaxies: _Galaxies,
) -> None:
    mtype, value = a["type"].strip(), a["value"]
    parts = _misp_ioc(mtype, value)
    to_ids = a.get("to_ids") in (True, "1", 1, "true", "True")
    values = list(dict.fromkeys(v.lower() for _, _, v in parts if v)) or [value.strip().lower()]
    common = {
        "name": value.strip(),
        "value": parts[0][2] if parts else value.strip(),
        "values": values,
        "misp_type": mtype,
        "misp_category": _str(a.get("category")),
        "misp_object": obj_name,
        "description": _str(a.get("comment")),
        "first_seen": _str(a.get("first_seen")),
        "last_seen": _str(a.get("last_seen")),
        "modified": _epoch(a.get("timestamp")),
        "revoked": False,
        "deprecated": False,
        "source": rows.source,
        "org": True,
        "imported_at": _now(),
    }
    if to_ids:
        stix_id = f"indicator--{a_uuid}"
        pattern = _misp_pattern(parts)
        props = {**common, "stix_type": "indicator", "pattern": pattern,
                 "pattern_type": "stix" if pattern else "misp"}  # fmt: skip
        label, rel = "Indicator", "INDICATES"
    else:
        stype = parts[0][1] if parts else f"x-misp-{mtype.lower()}"
        stix_id = f"{stype}--{a_uuid}"
        props = {**common, "stix_type": stype}
        label, rel = OBSERVABLE, "RELATED_TO"
    key = _key(rows.source, stix_id)
    rows.add_node(label, {"key": key, "stix_id": stix_id, **{k: v for k, v in props.items()
                                                           if v is not None}})  # fmt: skip
    me = Endpoint("org", key, label)
    rows.add_edge("REFERS_TO", report_key, me, {})
    for dst in _misp_attack_targets(rows, index, galaxies, where):
        rows.add_edge(rel, key, dst, {})
    sightings = [s for s in _items(a.get("Sighting")) if isinstance(s, dict)]
    seen = [s for s in sightings if str(s.get("type", "0")) == "0"]
    if seen:
        dates = sorted(d for d in (_epoch(s.get("date_sighting")) for s in seen) if d)
        orgs = [
            s["Organisation"]["name"]
            for s in seen
            if isinstance(s.get("Organisation"), dict) and _str(s["Organisation"].get("name"))
        ]
        sid = f"sighting--{uuid.uuid5(NAMESPACE, a_uuid)}"
        skey = _key(rows.source, sid)
        sprops = {
            "key": skey,
            "stix_id": sid,
            "stix_type": "sighting",
            "name": f"sighting of {value.strip()}",
            "count": len(seen),
            "first_seen": dates[0] if dates else None,
            "last_seen": dates[-1] if dates else None,
            "where_sighted": list(dict.fromkeys(orgs)),
            "revoked": False,
            "deprecated": False,
            "source": rows.source,
            "org": True,
            "imported_at": _now(),
        }
        rows.add_node("Sighting", {k: v for k, v in sprops.items() if v is not None})
        rows.add_edge("SIGHTING_OF", skey, me, {})


# ---------------------------------------------------------------- incidents

_HASH_TYPES = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


def guess_ioc(value: str) -> tuple[str, str]:
    """(STIX observable type, normalised value) of an IOC typed by an analyst."""
    v = value.strip()
    if not v:
        raise InvalidInput("empty IOC")
    if len(v) > 2048:
        raise InvalidInput(f"IOC longer than 2048 characters: {v[:40]}...")
    try:
        ip = ipaddress.ip_address(v)
        return ("ipv6-addr" if ip.version == 6 else "ipv4-addr"), v
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-F]+", v) and len(v) in _HASH_TYPES:
        return "file", v.lower()
    if re.match(r"^[a-z][a-z0-9+.-]*://", v, re.I):
        return "url", v
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
        return "email-addr", v
    if re.fullmatch(r"(?=.{1,253}$)([a-z0-9_-]{1,63}\.)+[a-z]{2,63}\.?", v, re.I):
        return "domain-name", v.lower().rstrip(".")
    return "text", v


def incident_rows(
    graph: Graph,
    *,
    name: str,
    techniques: list[str],
    iocs: list[str] | None = None,
    description: str | None = None,
    first_seen: str | None = None,
) -> tuple[IntelRows, list[str]]:
    """A named set of observed techniques (+ IOCs) -> rows; notes on revoked techniques."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("incident name is empty")
    if len(name) > 200:
        raise InvalidInput("incident name longer than 200 characters")
    if not techniques:
        raise InvalidInput("an incident needs at least one observed technique")
    resolved = resolve_techniques(graph, techniques)
    rows = IntelRows(source=_check_source(f"incident: {name}"), flavour="incident")
    stix_id = f"incident--{uuid.uuid5(NAMESPACE, name.lower())}"
    key = _key(rows.source, stix_id)
    props = {
        "key": key,
        "stix_id": stix_id,
        "stix_type": "incident",
        "name": name,
        "description": description,
        "first_seen": first_seen,
        "technique_ids": [r.attack_id for r in resolved],
        "created": _now(),
        "revoked": False,
        "deprecated": False,
        "source": rows.source,
        "org": True,
        "imported_at": _now(),
    }
    rows.add_node("Incident", {k: v for k, v in props.items() if v is not None})
    stix_ids = {
        r["attack_id"]: r["stix_id"]
        for r in graph.read(
            Q.intel_attack_lookup, stix_ids=[], attack_ids=[r.attack_id for r in resolved]
        )
        if r["kind"] == "Technique"
    }
    for r in resolved:
        rows.add_edge("USES", key, Endpoint("attack", stix_ids[r.attack_id], "Technique"), {})
    for value in dict.fromkeys(iocs or []):
        stype, v = guess_ioc(value)
        oid = f"{stype}--{uuid.uuid5(NAMESPACE, stype + ':' + v)}"
        okey = _key(rows.source, oid)
        rows.add_node(
            OBSERVABLE,
            {
                "key": okey,
                "stix_id": oid,
                "stix_type": stype,
                "name": v,
                "value": v,
                "values": [v.lower()],
                "revoked": False,
                "deprecated": False,
                "source": rows.source,
                "org": True,
                "imported_at": _now(),
            },
        )
        rows.add_edge("REFERS_TO", key, Endpoint("org", okey, OBSERVABLE), {})
    return rows, [r.note for r in resolved if r.note]


# ---------------------------------------------------------------- writing


def _check_source(source: str) -> str:
    s = re.sub(r"\s+", " ", source or "").strip()
    if not s:
        raise InvalidInput("source label is empty")
    if len(s) > 200:
        raise InvalidInput("source label longer than 200 characters")
    return s


def ensure_intel_schema(graph: Graph) -> None:
    for stmt in (*SCHEMA, *STORE_SCHEMA):
        graph.write(stmt)
    graph.write("CALL db.awaitIndexes(300)")  # a new index answers before batches rely on it
    graph.write(_IOC_KEYS)


def ioc_keys(label: str, row: dict[str, Any]) -> dict[str, Any]:
    """An indicator's or observable's row with its lookup keys (see :data:`SCHEMA`)."""
    values = row.get("values")
    if label not in ("Indicator", OBSERVABLE) or not isinstance(values, list) or not values:
        return row
    out = {**row, "ioc_key": values[0]}
    if len(values) > 1:
        out["ioc_multi"] = True
    return out


NOTHING = (
    "nothing to import (no intrusion set, campaign, software, report, indicator, observable, "
    "sighting or incident)"
)


@contextlib.contextmanager
def staged_import(graph: Graph, rows: IntelRows) -> Iterator[StagedIntel]:
    """The source's lock, held while a new import of it is written beside the previous one;
    what was written is removed when the block fails (the previous import keeps answering)."""
    ensure_intel_schema(graph)
    with graph_lock(graph, f"intel:{rows.source}", what=f"an import of {rows.source!r}"):
        store = StagedIntel(graph, rows.source)
        try:
            yield store
        except BaseException:
            store.discard()
            raise


def switch_in(graph: Graph, rows: IntelRows, store: StagedIntel, *, replace: bool = True,
              extra: dict[str, Any] | None = None) -> bool:  # fmt: skip
    """Write what ``rows`` still holds, then make the import the source's (one small
    transaction) and remove the previous one. Returns whether there was one."""
    rows.store = store
    rows.flush()
    meta = {
        "source": rows.source,
        "flavour": rows.flavour,
        "file": rows.file,
        "sha256": rows.sha256,
        "imported_at": _now(),
        "nodes": sum(rows.node_counts().values()),
        "relationships": sum(rows.edge_counts().values()),
        "counts": json.dumps({**rows.node_counts(), **rows.edge_counts()}, sort_keys=True),
        "warnings": rows.warnings[:50],
        "org": True,
        **(extra or {}),
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    replaced, _old = store.switch(meta, same_as=rows.same_as, replace=replace, now=_now())
    return replaced


def write_intel(
    graph: Graph,
    rows: IntelRows,
    *,
    replace: bool = True,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Write one import built in memory (a MISP event, an incident), replacing what the same
    source held before: staged in batches, switched in at once.

    Returns whether an earlier import of the source was replaced. With ``replace=False`` an
    existing source is a Conflict (nothing written)."""
    if not replace and graph.read(
        "MATCH (s:IntelSource {source: $source}) RETURN s.source AS s", source=rows.source
    ):
        raise Conflict(
            f"{rows.source!r} already exists; replace it explicitly or choose another name"
        )
    with staged_import(graph, rows) as store:
        return switch_in(graph, rows, store, replace=replace, extra=extra)


def _result(rows: IntelRows, replaced: bool, t0: float, notes: list[str] | None = None):
    return ImportResult(
        source=rows.source,
        flavour=rows.flavour,
        file=rows.file,
        sha256=rows.sha256,
        replaced=replaced,
        nodes=rows.node_counts(),
        relationships=rows.edge_counts(),
        same_as=len(rows.same_as),
        skipped=dict(sorted(rows.skipped.items())),
        warnings=[*(notes or []), *rows.warnings],
        seconds=round(time.perf_counter() - t0, 3),
    )


# ---------------------------------------------------------------- entry points


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
        source = _check_source(source)
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
            spec_version=_str(data.get("spec_version")),
            link_attack_ids=link_attack_ids,
        )
        return _result(rows, replaced, t0)
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
    return _result(rows, replaced, t0)


def _gunzipped(fh: BinaryIO) -> BinaryIO:
    head = fh.read(2)
    fh.seek(0)
    return gzip.GzipFile(fileobj=fh) if head == b"\x1f\x8b" else fh  # type: ignore[return-value]


def _bundle_header(opener: Callable[[], BinaryIO], name: str) -> tuple[str | None, str | None]:
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
            raise InvalidInput(f"{name}: not valid JSON ({_one_line(exc)})") from None
    if kind == "bundle" and objects != "start_array":
        raise InvalidInput(f"{name}: bundle has no 'objects' list")
    if kind == "bundle" and version is None:
        with opener() as raw, _gunzipped(raw) as fh, contextlib.suppress(ijson.JSONError):
            found = next(ijson.items(fh, "spec_version"), None)
            version = found if isinstance(found, str) else None
    return kind, version


def _stream_objects(opener: Callable[[], BinaryIO], name: str) -> Iterator[Any]:
    """A bundle's objects, one at a time."""
    with opener() as raw, _gunzipped(raw) as fh:
        try:
            for obj in ijson.items(fh, "objects.item", use_float=True):
                check_nesting(obj, name, MAX_NESTING - 2)
                yield obj
        except ijson.JSONError as exc:
            raise InvalidInput(f"{name}: not valid JSON ({_one_line(exc)})") from None


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
        source = _check_source(source)
    kind, version = _bundle_header(opener, name)
    if kind != "bundle":
        with opener() as fh:
            raw = fh.read(MAX_BUNDLE_BYTES + 1)
        data = read_json(raw, name)
        detect_format(data, name)
        return _import_misp(graph, data, name=name, source=source, digest=digest,
                            link_attack_ids=link_attack_ids, t0=t0)  # fmt: skip
    rows, replaced = stix_import(
        graph,
        lambda: _stream_objects(opener, name),
        source=source,
        file=name,
        sha256=digest,
        spec_version=version,
        link_attack_ids=link_attack_ids,
    )
    return _result(rows, replaced, t0)


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


def create_incident(
    graph: Graph,
    *,
    name: str,
    techniques: list[str],
    iocs: list[str] | None = None,
    description: str | None = None,
    first_seen: str | None = None,
    replace: bool = False,
) -> ImportResult:
    """The quick form: a named incident with its observed techniques and optional IOCs.

    Its source is ``incident: NAME``; an existing incident of that name is a Conflict unless
    ``replace``."""
    t0 = time.perf_counter()
    rows, notes = incident_rows(
        graph,
        name=name,
        techniques=techniques,
        iocs=iocs,
        description=description,
        first_seen=first_seen,
    )
    replaced = write_intel(graph, rows, replace=replace)
    return _result(rows, replaced, t0, notes)


def delete_source(graph: Graph, source: str) -> int:
    """Remove everything one source imported (an incident is the source ``incident: NAME``):
    it stops answering in one small transaction, then its nodes are deleted in batches."""
    source = _check_source(source)
    ensure_intel_schema(graph)
    with graph_lock(graph, f"intel:{source}", what=f"a delete of {source!r}"):
        deleted = retire_source(graph, source)
    if deleted < 0:
        known = [r["source"] for r in read_quietly(graph, Q.intel_sources, limit=1000)]
        raise NotFound(f"no imported source {source!r}", suggestions=known[:10])
    return deleted


def link_same_as(graph: Graph, *, cluster: str, group: str, remove: bool = False) -> dict[str, Any]:
    """Link (or unlink) the organisation's cluster and a MITRE group as the same actor.

    ``cluster``: the cluster's STIX id, name or alias; ``group``: ATT&CK id, name or alias.
    Every copy of the cluster (one per source that holds it) gets the link."""
    keys, cname = resolve_cluster_keys(graph, cluster)
    if CLUSTER_ID.match(group.strip()):
        raise InvalidInput(f"{group!r} is one of the organisation's clusters, not an ATT&CK group")
    g = resolve_group(graph, group)
    if CLUSTER_ID.match(g.attack_id):  # a resolve_group that knows the organisation's clusters
        raise InvalidInput(f"{group!r} is one of the organisation's clusters, not an ATT&CK group")

    def work(tx: ManagedTransaction) -> int:
        if remove:
            rec = tx.run(
                "UNWIND $keys AS k MATCH (c:OrgObject {key: k})-[s:SAME_AS]->(g:Group "
                "{attack_id: $gid}) DELETE s RETURN count(s) AS n",
                keys=keys,
                gid=g.attack_id,
            ).single()
        else:
            rec = tx.run(
                "UNWIND $keys AS k MATCH (c:OrgObject {key: k}) "
                "MATCH (g:Group {attack_id: $gid}) "
                "MERGE (c)-[s:SAME_AS]->(g) "
                "SET s.org = true, s.by = 'analyst', s.source = c.source, "
                "s.created = coalesce(s.created, $now) RETURN count(s) AS n",
                keys=keys,
                gid=g.attack_id,
                now=_now(),
            ).single()
        bump_graph_version(tx, INTEL)
        return int(rec["n"]) if rec else 0

    with neo4j_errors(), quiet_session(graph) as session:
        n = session.execute_write(work)
    graph.cache.clear()
    if remove and n == 0:
        raise NotFound(f"{cname!r} is not linked to {g.attack_id}")
    return {"cluster": cname, "group_id": g.attack_id, "group": g.name, "links": n,
            "removed": remove}  # fmt: skip
