"""STIX bundle -> graph rows (pure functions, no database).

Validation happens here, before anything is written: every object is checked for the fields the
graph needs, every reference must resolve inside the bundle, and the first problem becomes one
``BundleError`` naming the object and the field.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from queries.resolve import norm

# STIX type -> node labels. The first label is the primary one; every ATT&CK node also carries
# ``AttackObject`` so that relationships can be written by stix_id across types.
NODE_LABELS: dict[str, tuple[str, ...]] = {
    "x-mitre-tactic": ("Tactic",),
    "attack-pattern": ("Technique",),
    "intrusion-set": ("Group",),
    "malware": ("Software", "Malware"),
    "tool": ("Software", "Tool"),
    "campaign": ("Campaign",),
    "course-of-action": ("Mitigation",),
    "x-mitre-data-source": ("DataSource",),
    "x-mitre-data-component": ("DataComponent",),
    "x-mitre-detection-strategy": ("DetectionStrategy",),
    "x-mitre-analytic": ("Analytic",),
    "x-mitre-asset": ("Asset",),
    "x-mitre-matrix": ("Matrix",),
}

# Types present in ATT&CK bundles that the graph does not need (counted as skipped).
SKIPPED_TYPES = {"identity", "marking-definition", "x-mitre-collection"}

# STIX relationship_type -> (graph type, allowed source types, allowed target types)
REL_TYPES: dict[str, str] = {
    "uses": "USES",
    "subtechnique-of": "SUBTECHNIQUE_OF",
    "attributed-to": "ATTRIBUTED_TO",
    "mitigates": "MITIGATES",
    "detects": "DETECTS",
    "revoked-by": "REVOKED_BY",
    "targets": "TARGETS",
}

KILL_CHAIN_DOMAIN = {
    "mitre-attack": "enterprise-attack",
    "mitre-mobile-attack": "mobile-attack",
    "mitre-ics-attack": "ics-attack",
}
DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")
DOMAIN_ALIASES = {
    "enterprise": "enterprise-attack",
    "mobile": "mobile-attack",
    "ics": "ics-attack",
    **{d: d for d in DOMAINS},
}

# Properties kept out of node rows (they become relationships or derived fields).
_DROP = {
    "id",
    "type",
    "spec_version",
    "external_references",
    "object_marking_refs",
    "created_by_ref",
    "x_mitre_modified_by_ref",
    "kill_chain_phases",
    "tactic_refs",
    "x_mitre_analytic_refs",
    "x_mitre_log_source_references",
    "x_mitre_log_sources",
    "x_mitre_data_source_ref",
    "x_mitre_mutable_elements",
    "granular_markings",
    "x_mitre_attack_spec_version",
}
_STIX_ID = re.compile(r"^([a-z0-9][a-z0-9-]*)--[0-9a-fA-F-]{36}$")
# Property names that become Neo4j property keys: what STIX allows (and what ATT&CK uses).
_PROP_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,249}$")
_INT64 = (-(2**63), 2**63 - 1)


class BundleError(ValueError):
    """The input is not a usable ATT&CK bundle; the message says what and where."""


@dataclass
class GraphRows:
    """Everything one bundle writes, grouped for batched UNWIND statements."""

    domain: str
    spec_version: str
    release: str | None
    nodes: dict[tuple[str, ...], list[dict[str, Any]]] = field(default_factory=dict)
    rels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    in_tactic: list[dict[str, Any]] = field(default_factory=list)
    matrix_tactics: list[dict[str, Any]] = field(default_factory=list)
    strategy_analytics: list[dict[str, Any]] = field(default_factory=list)
    component_sources: list[dict[str, Any]] = field(default_factory=list)
    log_sources: list[dict[str, Any]] = field(default_factory=list)
    """LogSource rows: ``key``, ``name``, ``channel``, ``data_component`` and ``listed`` (true
    when the data component's own ``x_mitre_log_sources`` names it)."""
    analytic_log_sources: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    """What loads but deserves a word: a retired (revoked or deprecated) technique whose kill
    chain phase names no tactic of the release (loaded without that tactic)."""

    def node_count(self) -> int:
        return sum(len(v) for v in self.nodes.values()) + len(self.log_sources)

    def rel_count(self) -> int:
        return (
            sum(len(v) for v in self.rels.values())
            + len(self.in_tactic)
            + len(self.matrix_tactics)
            + len(self.strategy_analytics)
            + len(self.component_sources)
            + len(self.analytic_log_sources)
            + len(self.log_sources)
        )

    def counts(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for labels, rows in self.nodes.items():
            out[labels[0] if labels[0] != "Software" else labels[1]] += len(rows)
        out["LogSource"] = len(self.log_sources)
        for rtype, rows in self.rels.items():
            out[rtype] += len(rows)
        out["IN_TACTIC"] = len(self.in_tactic)
        out["HAS_TACTIC"] = len(self.matrix_tactics)
        out["HAS_ANALYTIC"] = len(self.strategy_analytics)
        out["PART_OF"] = len(self.component_sources)
        out["USES_LOG_SOURCE"] = len(self.analytic_log_sources)
        out["OF_DATA_COMPONENT"] = len(self.log_sources)
        return dict(out)


def parse_json(data: bytes, where: str) -> dict[str, Any]:
    """Parse bundle bytes; a one-line BundleError if they are not a JSON object."""
    try:
        import orjson

        obj = orjson.loads(data)
    except ImportError:  # pragma: no cover - orjson is a dependency
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise BundleError(f"{where}: not valid JSON ({exc})") from None
    except Exception as exc:  # orjson.JSONDecodeError
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BundleError(f"{where}: expected a STIX bundle object, got {type(obj).__name__}")
    return obj


def bundle_objects(bundle: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if bundle.get("type") != "bundle":
        raise BundleError(f"{where}: not a STIX bundle (type is {bundle.get('type')!r})")
    objects = bundle.get("objects")
    if not isinstance(objects, list):
        raise BundleError(f"{where}: bundle has no 'objects' list")
    return objects


def _attack_refs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The object's ATT&CK external references (tolerant of malformed input: never raises)."""
    refs = obj.get("external_references")
    if not isinstance(refs, list):
        return
    for ref in refs:
        if isinstance(ref, dict):
            src = ref.get("source_name")
            if isinstance(src, str) and src in _ATTACK_SOURCES:
                yield ref


def attack_id(obj: dict[str, Any]) -> str | None:
    for ref in _attack_refs(obj):
        ext = ref.get("external_id")
        if isinstance(ext, str):
            return ext
    return None


_ATTACK_SOURCES = {"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"}


def _attack_url(obj: dict[str, Any]) -> str | None:
    for ref in _attack_refs(obj):
        url = ref.get("url")
        return url if isinstance(url, str) else None
    return None


def _where(i: int, obj: Any) -> str:
    oid = obj.get("id") if isinstance(obj, dict) else None
    return f"objects[{i}]" + (f" ({oid})" if isinstance(oid, str) else "")


def _require_str(obj: dict[str, Any], key: str, where: str, *, empty_ok: bool = False) -> str:
    val = obj.get(key)
    if not isinstance(val, str) or (not empty_ok and not val):
        got = "missing" if key not in obj else f"a {type(val).__name__}"
        raise BundleError(f"{where}: '{key}' must be a non-empty string, got {got}")
    return val


def _check_str_list(obj: dict[str, Any], key: str, where: str) -> None:
    val = obj.get(key)
    if val is None:
        return
    if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
        raise BundleError(f"{where}: '{key}' must be a list of strings")


def _scalar_props(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """STIX properties as Neo4j properties: ``x_mitre_`` dropped, scalars and string lists kept.

    Keys that cannot be property names and nested values are left out (the graph does not use
    them); an integer Neo4j cannot store is an error rather than a failed write.
    """
    props: dict[str, Any] = {}
    for key, val in obj.items():
        if key in _DROP or not isinstance(key, str) or not _PROP_KEY.match(key):
            continue
        name = key[8:] if key.startswith("x_mitre_") else key
        if not name:
            continue
        if isinstance(val, int) and not isinstance(val, bool):
            if not _INT64[0] <= val <= _INT64[1]:
                raise BundleError(f"{where}: '{key}' is an integer out of range")
            props[name] = val
        elif isinstance(val, (str, bool, float)) or (
            isinstance(val, list) and all(isinstance(x, str) for x in val)
        ):
            props[name] = val
    return props


def _citations(obj: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    names, urls, texts = [], [], []
    refs = obj.get("external_references")
    for ref in refs if isinstance(refs, list) else ():
        if not isinstance(ref, dict):
            continue
        src = ref.get("source_name")
        if isinstance(src, str) and src in _ATTACK_SOURCES:
            continue
        names.append(_text(src))
        urls.append(_text(ref.get("url")))
        texts.append(_text(ref.get("description")))
    return names, urls, texts


def _text(value: Any) -> str:
    """A citation field as text: strings as they are, numbers printed, anything else empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def detect_domain(objects: list[dict[str, Any]]) -> str | None:
    """The ATT&CK domain a bundle holds, from its matrix or, failing that, its objects."""
    for obj in objects:
        if isinstance(obj, dict) and obj.get("type") == "x-mitre-matrix":
            ext = attack_id(obj)
            if ext in DOMAINS:
                return ext
    counts: Counter[str] = Counter()
    for obj in objects:
        if isinstance(obj, dict) and obj.get("type") == "attack-pattern":
            doms = obj.get("x_mitre_domains")
            for d in doms if isinstance(doms, list) else ():
                if isinstance(d, str) and d in DOMAINS:
                    counts[d] += 1
    return counts.most_common(1)[0][0] if counts else None


def detect_spec_version(bundle: dict[str, Any], objects: list[dict[str, Any]]) -> str:
    if isinstance(bundle.get("spec_version"), str):
        return bundle["spec_version"]
    for obj in objects[:50]:
        if isinstance(obj, dict) and isinstance(obj.get("spec_version"), str):
            return obj["spec_version"]
    return "2.0"


def detect_release(objects: list[dict[str, Any]], hint: str | None) -> str | None:
    """ATT&CK release: the x-mitre-collection's version (STIX 2.1), else ``hint`` (a file name)."""
    for obj in objects:
        if isinstance(obj, dict) and obj.get("type") == "x-mitre-collection":
            ver = obj.get("x_mitre_version")
            if isinstance(ver, str) and ver:
                return ver
    if hint:
        m = re.search(r"(?<![\d.])v?(\d{1,2}\.\d{1,2})(?![\d])", hint)
        if m:
            return m.group(1)
    return None


def to_rows(
    objects: list[dict[str, Any]],
    *,
    domain: str,
    spec_version: str,
    release: str | None,
    known_ids: Callable[[], Iterable[str]] | None = None,
    known_tactics: Callable[[], dict[tuple[str, str], str]] | None = None,
    require_attack_object: bool = True,
) -> GraphRows:
    """Validate ``objects`` and turn them into graph rows.

    ``known_ids``: returns the STIX ids already in the graph (asked only when a reference does
    not resolve inside the bundle), so that a partial bundle (a TAXII sync) may refer to them.
    Anything else that does not resolve is a dangling reference. ``known_tactics``: likewise,
    the graph's tactics as (domain, shortname) -> STIX id, asked only when a technique's kill
    chain phase names a tactic the bundle does not hold. ``require_attack_object=False``
    accepts a bundle without any ATT&CK object (a sync delta of relationships only).
    """
    rows = GraphRows(domain=domain, spec_version=spec_version, release=release)
    ids: dict[str, str] = {}  # stix_id -> type
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise BundleError(f"objects[{i}]: expected an object, got {type(obj).__name__}")
        where = _where(i, obj)
        otype = _require_str(obj, "type", where)
        oid = _require_str(obj, "id", where)
        m = _STIX_ID.match(oid)
        if not m or m.group(1) != otype:
            raise BundleError(f"{where}: id {oid!r} is not a STIX id of type {otype!r}")
        if oid in ids and otype != "relationship":
            raise BundleError(f"{where}: duplicate id {oid}")
        ids[oid] = otype
    known: set[str] | None = None

    def resolve(ref: Any, where: str, key: str) -> str:
        nonlocal known
        if not isinstance(ref, str) or not _STIX_ID.match(ref):
            raise BundleError(f"{where}: '{key}' must be a STIX id, got {ref!r}")
        if ref in ids:
            return ref
        if known is None:
            known = set(known_ids()) if known_ids else set()
        if ref not in known:
            raise BundleError(f"{where}: '{key}' refers to {ref}, which is not in the bundle")
        return ref

    tactics_by_short: dict[tuple[str, str], str] = {}
    # (tech id, domain, phase, where, name or ATT&CK id, what retired it or None)
    technique_phases: list[tuple[str, str, str, str, str, str | None]] = []
    log_sources: dict[str, dict[str, Any]] = {}
    has_attack_object = False

    for i, obj in enumerate(objects):
        otype = obj["type"]
        where = _where(i, obj)
        if otype == "relationship":
            continue
        labels = NODE_LABELS.get(otype)
        if labels is None:
            rows.skipped[otype] += 1
            continue
        name_empty_ok = otype in {"x-mitre-analytic"}
        _require_str(obj, "name", where, empty_ok=name_empty_ok)
        for key in ("description", "created", "modified"):
            if key in obj and not isinstance(obj[key], str):
                raise BundleError(f"{where}: '{key}' must be a string")
        for key in ("revoked", "x_mitre_deprecated", "x_mitre_is_subtechnique"):
            if key in obj and not isinstance(obj[key], bool):
                raise BundleError(f"{where}: '{key}' must be true or false")
        for key in ("aliases", "x_mitre_aliases", "x_mitre_platforms", "x_mitre_domains"):
            _check_str_list(obj, key, where)
        refs = obj.get("external_references", [])
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            raise BundleError(f"{where}: 'external_references' must be a list of objects")
        aid = attack_id(obj)
        if aid:
            has_attack_object = True
        props = _scalar_props(obj, where)
        props["stix_id"] = obj["id"]
        props["stix_type"] = otype
        props["attack_id"] = aid
        props["url"] = _attack_url(obj)
        props["revoked"] = bool(obj.get("revoked", False))
        props["deprecated"] = bool(obj.get("x_mitre_deprecated", False))
        props.setdefault("description", "")
        if otype == "attack-pattern":
            props["is_subtechnique"] = bool(obj.get("x_mitre_is_subtechnique", False))
            phases = obj.get("kill_chain_phases", [])
            if not isinstance(phases, list):
                raise BundleError(f"{where}: 'kill_chain_phases' must be a list")
            tactic_names = []
            for p in phases:
                if not isinstance(p, dict) or not isinstance(p.get("phase_name"), str):
                    raise BundleError(f"{where}: 'kill_chain_phases' entries need a phase_name")
                kc = p.get("kill_chain_name")
                pdomain = KILL_CHAIN_DOMAIN.get(kc) if isinstance(kc, str) else None
                if pdomain is None:
                    continue  # a kill chain that is not ATT&CK's
                tactic_names.append(p["phase_name"])
                retired = (
                    "revoked" if props["revoked"] else "deprecated" if props["deprecated"] else None
                )
                technique_phases.append(
                    (obj["id"], pdomain, p["phase_name"], where, aid or obj["name"], retired)
                )
            props["tactics"] = tactic_names
        elif otype == "x-mitre-tactic":
            short = _require_str(obj, "x_mitre_shortname", where)
            tdomains = obj.get("x_mitre_domains") or [domain]
            for d in tdomains:
                tactics_by_short[(d, short)] = obj["id"]
        elif otype == "x-mitre-matrix":
            trefs = obj.get("tactic_refs", [])
            if not isinstance(trefs, list):
                raise BundleError(f"{where}: 'tactic_refs' must be a list")
            for order, ref in enumerate(trefs):
                rows.matrix_tactics.append(
                    {"src": obj["id"], "dst": resolve(ref, where, "tactic_refs"), "order": order}
                )
        elif otype == "x-mitre-detection-strategy":
            arefs = obj.get("x_mitre_analytic_refs", [])
            if not isinstance(arefs, list):
                raise BundleError(f"{where}: 'x_mitre_analytic_refs' must be a list")
            for ref in arefs:
                rows.strategy_analytics.append(
                    {"src": obj["id"], "dst": resolve(ref, where, "x_mitre_analytic_refs")}
                )
        elif otype == "x-mitre-analytic":
            lrefs = obj.get("x_mitre_log_source_references", [])
            if not isinstance(lrefs, list):
                raise BundleError(f"{where}: 'x_mitre_log_source_references' must be a list")
            for ref in lrefs:
                if not isinstance(ref, dict):
                    raise BundleError(f"{where}: log source references must be objects")
                dc = resolve(
                    ref.get("x_mitre_data_component_ref"), where, "x_mitre_data_component_ref"
                )
                ls = _log_source(log_sources, dc, ref, where)
                rows.analytic_log_sources.append({"src": obj["id"], "key": ls["key"]})
        elif otype == "x-mitre-data-component":
            dsref = obj.get("x_mitre_data_source_ref")
            if dsref:
                rows.component_sources.append(
                    {"src": obj["id"], "dst": resolve(dsref, where, "x_mitre_data_source_ref")}
                )
            srcs = obj.get("x_mitre_log_sources", [])
            if not isinstance(srcs, list):
                raise BundleError(f"{where}: 'x_mitre_log_sources' must be a list")
            for ref in srcs:
                if not isinstance(ref, dict):
                    raise BundleError(f"{where}: 'x_mitre_log_sources' entries must be objects")
                _log_source(log_sources, obj["id"], ref, where)["listed"] = True
        if otype in ("intrusion-set", "campaign"):
            props["aliases"] = obj.get("aliases") or [obj["name"]]
        elif otype in ("malware", "tool"):
            props["aliases"] = obj.get("x_mitre_aliases") or [obj["name"]]
        if "aliases" in props:
            props["aliases_text"] = " ".join(props["aliases"])
        if otype == "intrusion-set":
            # the name as analysts' words are compared: a group named so is an index seek away
            props["name_key"] = norm(obj["name"])
        rows.nodes.setdefault(labels, []).append(props)

    if require_attack_object and not has_attack_object:
        raise BundleError("not an ATT&CK bundle: no object carries a mitre-attack external id")

    graph_tactics: dict[tuple[str, str], str] | None = None
    leftovers: dict[tuple[str, str], list[str]] = {}  # (domain, phase) -> retired techniques
    for tech, pdomain, phase, where, name, retired in technique_phases:
        tactic = tactics_by_short.get((pdomain, phase))
        if tactic is None and known_tactics is not None:
            if graph_tactics is None:
                graph_tactics = known_tactics()
            tactic = graph_tactics.get((pdomain, phase))
        if tactic is None and (tactics_by_short or graph_tactics):
            if retired is None:
                raise BundleError(
                    f"{where} {name!r}: kill chain phase {phase!r} names no tactic of {pdomain}"
                )
            # A release that drops a tactic keeps its retired objects as they were: a leftover
            # phase on one of them must not reject the whole release.
            leftovers.setdefault((pdomain, phase), []).append(f"{name} ({retired})")
        if tactic is not None:
            rows.in_tactic.append({"src": tech, "dst": tactic})
    for (pdomain, phase), retired_ones in sorted(leftovers.items()):
        rows.warnings.append(
            f"{len(retired_ones)} retired technique(s) name kill chain phase {phase!r}, no tactic "
            f"of {pdomain}: loaded without it: {', '.join(sorted(retired_ones))}"
        )

    for i, obj in enumerate(objects):
        if obj["type"] != "relationship":
            continue
        where = _where(i, obj)
        rtype = _require_str(obj, "relationship_type", where)
        src = resolve(obj.get("source_ref"), where, "source_ref")
        dst = resolve(obj.get("target_ref"), where, "target_ref")
        gtype = REL_TYPES.get(rtype)
        if gtype is None:
            rows.skipped[f"relationship:{rtype}"] += 1
            continue
        ends = {ids.get(src) or src.split("--")[0], ids.get(dst) or dst.split("--")[0]}
        if not ends <= NODE_LABELS.keys():
            # e.g. a relationship from an identity: its end is not a node of the graph
            rows.skipped[
                f"relationship:{rtype} to {'/'.join(sorted(ends - NODE_LABELS.keys()))}"
            ] += 1
            continue
        for key in ("description", "created", "modified"):
            if key in obj and not isinstance(obj[key], str):
                raise BundleError(f"{where}: '{key}' must be a string")
        for key in ("revoked", "x_mitre_deprecated"):
            if key in obj and not isinstance(obj[key], bool):
                raise BundleError(f"{where}: '{key}' must be true or false")
        refs = obj.get("external_references", [])
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            raise BundleError(f"{where}: 'external_references' must be a list of objects")
        names, urls, texts = _citations(obj)
        rows.rels.setdefault(gtype, []).append(
            {
                "src": src,
                "dst": dst,
                "props": {
                    "stix_id": obj["id"],
                    "description": obj.get("description", "") or "",
                    "citations": names,
                    "citation_urls": urls,
                    "citation_texts": texts,
                    "created": obj.get("created"),
                    "modified": obj.get("modified"),
                    "revoked": bool(obj.get("revoked", False)),
                    "deprecated": bool(obj.get("x_mitre_deprecated", False)),
                },
            }
        )
    rows.log_sources = list(log_sources.values())
    return rows


def _log_source(
    acc: dict[str, dict[str, Any]], dc: str, ref: dict[str, Any], where: str
) -> dict[str, Any]:
    name = ref.get("name")
    channel = ref.get("channel", "")
    if not isinstance(name, str) or not name or not isinstance(channel, str):
        raise BundleError(f"{where}: a log source needs a 'name' and a 'channel' string")
    key = f"{dc}|{name}|{channel}"
    row = acc.get(key)
    if row is None:
        row = {"key": key, "name": name, "channel": channel, "data_component": dc, "listed": False}
        acc[key] = row
    return row


def type_counts(objects: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for obj in objects:
        otype = obj.get("type") if isinstance(obj, dict) else None
        counts[otype if isinstance(otype, str) else "?"] += 1
    return dict(counts)
