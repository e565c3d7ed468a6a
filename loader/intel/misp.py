"""MISP event JSON into rows: the event becomes a ``Report``, attributes become IOCs
(``Indicator`` when ``to_ids``, else ``Observable``, with their sightings), ATT&CK galaxy tags
link to ATT&CK's techniques, groups and software, threat-actor galaxy clusters become the
organisation's clusters."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from queries.errors import InvalidInput
from queries.graph import Graph

from .attack import AttackIndex
from .common import (
    ID_IN_NAME,
    NAMESPACE,
    OBSERVABLE,
    check_source,
    list_of,
    nonblank,
    org_key,
    strings_of,
)
from .rows import Endpoint, IntelRows

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


def misp_ioc(mtype: str, value: str) -> list[tuple[str, str, str]]:
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
                out.extend(misp_ioc(t, v))
        return out
    if mtype in MISP_TYPES:
        stype = MISP_TYPES[mtype][0]
        if stype == "ipv4-addr":
            with contextlib.suppress(ValueError):
                stype = "ipv6-addr" if ipaddress.ip_address(value.strip()).version == 6 else stype
        return [(mtype, stype, value.strip())]
    return [(mtype, f"x-misp-{mtype.lower()}", value.strip())]


def misp_pattern(parts: list[tuple[str, str, str]]) -> str | None:
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
            ext_ids = strings_of(meta.get("external_id"))
            value = _tag_value(tag)
            m = ID_IN_NAME.search(value)
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
                        "aliases": strings_of(meta.get("synonyms")),
                        "description": nonblank(cluster.get("description")),
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
            clusters.extend(c for c in list_of(g.get("GalaxyCluster")) if isinstance(c, dict))
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
        source=check_source(label),
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
        info = nonblank(ev.get("info"))
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
                attrs.append((f"{at}.Object[{o}].Attribute[{n}]", a, nonblank(mobj.get("name"))))
        checked = []
        for aw, a, obj_name in attrs:
            if not isinstance(a, dict):
                raise InvalidInput(f"{aw}: must be an object")
            a_uuid = _check_uuid(a.get("uuid"), aw)
            for k in ("type", "value"):
                if not nonblank(a.get(k)):
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
            "key": org_key(rows.source, report_id),
            "stix_id": report_id,
            "stix_type": "report",
            "kind": "misp-event",
            "name": info,
            "published": nonblank(ev.get("date")),
            "misp_event_id": str(ev.get("id")) if ev.get("id") is not None else None,
            "threat_level_id": str(ev.get("threat_level_id") or "") or None,
            "analysis": str(ev.get("analysis") or "") or None,
            "created_by": nonblank(org.get("name")),
            "tags": [t for t in tags if not t.startswith("misp-galaxy:")],
            "modified": _epoch(ev.get("timestamp")),
            "revoked": False,
            "deprecated": False,
            "source": rows.source,
            "org": True,
            "imported_at": rows.imported_at,
        }
        rows.add_node("Report", {k: v for k, v in report.items() if v is not None})
        src = org_key(rows.source, report_id)
        for dst in _misp_attack_targets(rows, index, galaxies, at):
            rows.add_edge("REFERS_TO", src, dst, {})
        for actor in galaxies.actors:
            cid = f"intrusion-set--{actor['uuid'] or uuid.uuid5(NAMESPACE, actor['name'])}"
            key = org_key(rows.source, cid)
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
                    "imported_at": rows.imported_at,
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
    parts = misp_ioc(mtype, value)
    to_ids = a.get("to_ids") in (True, "1", 1, "true", "True")
    values = list(dict.fromkeys(v.lower() for _, _, v in parts if v)) or [value.strip().lower()]
    common = {
        "name": value.strip(),
        "value": parts[0][2] if parts else value.strip(),
        "values": values,
        "misp_type": mtype,
        "misp_category": nonblank(a.get("category")),
        "misp_object": obj_name,
        "description": nonblank(a.get("comment")),
        "first_seen": nonblank(a.get("first_seen")),
        "last_seen": nonblank(a.get("last_seen")),
        "modified": _epoch(a.get("timestamp")),
        "revoked": False,
        "deprecated": False,
        "source": rows.source,
        "org": True,
        "imported_at": rows.imported_at,
    }
    if to_ids:
        stix_id = f"indicator--{a_uuid}"
        pattern = misp_pattern(parts)
        props = {**common, "stix_type": "indicator", "pattern": pattern,
                 "pattern_type": "stix" if pattern else "misp"}  # fmt: skip
        label, rel = "Indicator", "INDICATES"
    else:
        stype = parts[0][1] if parts else f"x-misp-{mtype.lower()}"
        stix_id = f"{stype}--{a_uuid}"
        props = {**common, "stix_type": stype}
        label, rel = OBSERVABLE, "RELATED_TO"
    key = org_key(rows.source, stix_id)
    rows.add_node(label, {"key": key, "stix_id": stix_id, **{k: v for k, v in props.items()
                                                           if v is not None}})  # fmt: skip
    me = Endpoint("org", key, label)
    rows.add_edge("REFERS_TO", report_key, me, {})
    for dst in _misp_attack_targets(rows, index, galaxies, where):
        rows.add_edge(rel, key, dst, {})
    sightings = [s for s in list_of(a.get("Sighting")) if isinstance(s, dict)]
    seen = [s for s in sightings if str(s.get("type", "0")) == "0"]
    if seen:
        dates = sorted(d for d in (_epoch(s.get("date_sighting")) for s in seen) if d)
        orgs = [
            s["Organisation"]["name"]
            for s in seen
            if isinstance(s.get("Organisation"), dict) and nonblank(s["Organisation"].get("name"))
        ]
        sid = f"sighting--{uuid.uuid5(NAMESPACE, a_uuid)}"
        skey = org_key(rows.source, sid)
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
            "imported_at": rows.imported_at,
        }
        rows.add_node("Sighting", {k: v for k, v in sprops.items() if v is not None})
        rows.add_edge("SIGHTING_OF", skey, me, {})
