"""STIX 2.1 bundles (OpenCTI, ATT&CK Workbench, MISP's misp-stix) into rows: the organisation's
objects as nodes, observed-data flattened to its observables, reports' references, sightings
and relationships; the import staged and switched in once every object is valid."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from queries.catalog import Q
from queries.errors import InvalidInput
from queries.graph import Graph

from . import rows as intel_rows
from .attack import AttackIndex, attack_ids_of
from .bundle import EndpointMap, Scan, Spill, resolve_versions, scan_bundle, validate_object
from .common import (
    ATTACK_KIND,
    IGNORED_TYPES,
    NAMESPACE,
    OBSERVABLE,
    OPENCTI_EXT,
    OPENCTI_SCO_EXT,
    ORG_LABELS,
    REL_TYPES,
    SCO_TYPES,
    check_source,
    extension_of,
    nonblank,
    org_key,
    stamp_text,
    strings_of,
)
from .iocs import observable_values, pattern_values
from .rows import Endpoint, IntelRows
from .write import NOTHING, staged_import, switch_in


def _common(obj: dict[str, Any], rows: IntelRows, names: dict[str, str]) -> dict[str, Any]:
    ext = extension_of(obj, OPENCTI_EXT)
    score = obj.get(
        "x_opencti_score", ext.get("score", extension_of(obj, OPENCTI_SCO_EXT).get("score"))
    )
    urls = [
        r["url"]
        for r in obj.get("external_references") or []
        if isinstance(r, dict) and isinstance(r.get("url"), str)
    ]
    props: dict[str, Any] = {
        "key": org_key(rows.source, obj["id"]),
        "stix_id": obj["id"],
        "stix_type": obj["type"],
        "name": nonblank(obj.get("name")) or obj["id"],
        "description": nonblank(obj.get("description")) or nonblank(ext.get("description")),
        "created": stamp_text(obj.get("created")),
        "modified": stamp_text(obj.get("modified")),
        "revoked": bool(obj.get("revoked", False)),
        "deprecated": bool(obj.get("x_mitre_deprecated", False)),
        "confidence": obj.get("confidence") if isinstance(obj.get("confidence"), int) else None,
        "score": score if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        "stix_labels": strings_of(obj.get("labels")),
        "reference_urls": urls,
        "created_by": names.get(obj.get("created_by_ref") or ""),
        "source": rows.source,
        "org": True,
        "imported_at": rows.imported_at,
    }
    return {k: v for k, v in props.items() if v is not None}


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
    scan = scan_bundle(objects())
    if not scan.count:
        raise InvalidInput(f"{file or 'bundle'}: the bundle holds no objects")
    if scan.dups:
        resolve_versions(scan, objects())
    flavour = scan.flavour
    label = source or (f"{flavour}-export {Path(file).name}" if file else f"{flavour}-export")
    rows = IntelRows(
        source=check_source(label),
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
    scan: Scan,
    index: AttackIndex,
    names: dict[str, str],
    graph: Graph,
    spec_version: str | None,
) -> None:
    """The second pass: every object validated in order, nodes written as they come,
    relationships and sightings set aside and written once every node is."""
    labels: dict[str, str] = {}
    endpoints = EndpointMap(rows.source)
    relationships, sightings = Spill(), Spill()
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
            validate_object(obj, i, spec_version)
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
            if len(part) >= intel_rows.BATCH:  # the rows' batch size, read when used
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
    ext = extension_of(obj, OPENCTI_EXT)
    if label in ("OrgCluster", "OrgCampaign", "OrgSoftware"):
        aliases = (
            strings_of(obj.get("aliases"))
            + strings_of(obj.get("x_mitre_aliases"))
            + strings_of(obj.get("x_opencti_aliases"))
            + strings_of(ext.get("aliases"))
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
                props[k] = stamp_text(obj[k])
        for k in ("goals", "objective", "resource_level", "primary_motivation", "is_family"):
            v = obj.get(k)
            if isinstance(v, (str, bool)) or (isinstance(v, list) and strings_of(v)):
                props[k] = v
        if label == "OrgSoftware":
            props["software_type"] = otype
            props["platforms"] = strings_of(obj.get("x_mitre_platforms"))
            props["types"] = strings_of(obj.get("malware_types") or obj.get("tool_types"))
    elif label == "Report":
        props["kind"] = otype
        props["published"] = stamp_text(obj.get("published"))
        props["report_types"] = strings_of(obj.get("report_types")) or strings_of(
            obj.get("context")
        )
    elif label == "Indicator":
        pattern = obj.get("pattern")
        props["pattern"] = pattern
        props["pattern_type"] = obj.get("pattern_type") or "stix"
        props["valid_from"] = stamp_text(obj.get("valid_from"))
        props["valid_until"] = stamp_text(obj.get("valid_until"))
        props["indicator_types"] = strings_of(obj.get("indicator_types"))
        props["main_observable_type"] = nonblank(
            obj.get("x_opencti_main_observable_type") or ext.get("main_observable_type")
        )
        values = pattern_values(pattern) if props["pattern_type"] == "stix" and pattern else []
        props["values"] = values
        props["value"] = values[0] if values else None
    elif label == "Incident":
        for k in ("first_seen", "last_seen"):
            if obj.get(k):
                props[k] = stamp_text(obj[k])
        for k in ("incident_type", "severity", "objective"):
            if nonblank(obj.get(k)):
                props[k] = obj[k]
        if nonblank(obj.get("source")):
            props["incident_source"] = obj["source"]
    rows.add_node(label, {k: v for k, v in props.items() if v is not None})
    endpoints[obj["id"]] = [Endpoint("org", props["key"], label)]


def _observable_node(
    rows: IntelRows, obj: dict[str, Any], endpoints: MutableMapping[str, list[Endpoint]]
) -> None:
    main, values = observable_values(obj)
    ext = extension_of(obj, OPENCTI_SCO_EXT)
    score = obj.get("x_opencti_score", ext.get("score"))
    props = {
        "key": org_key(rows.source, obj["id"]),
        "stix_id": obj["id"],
        "stix_type": obj["type"],
        "name": main or obj["id"],
        "value": main,
        "values": values,
        "description": nonblank(obj.get("x_opencti_description"))
        or nonblank(ext.get("description")),
        "score": score if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        "revoked": False,
        "deprecated": False,
        "source": rows.source,
        "org": True,
        "imported_at": rows.imported_at,
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
    props["name"] = nonblank(obj.get("name")) or f"sighting of {labels.get(target, target)}"
    for k in ("first_seen", "last_seen"):
        if obj.get(k):
            props[k] = stamp_text(obj[k])
    if isinstance(obj.get("count"), int):
        props["count"] = obj["count"]
    props["where_sighted"] = [names.get(r, r) for r in strings_of(obj.get("where_sighted_refs"))]
    rows.add_node("Sighting", props)
    src = Endpoint("org", props["key"], "Sighting")
    endpoints[obj["id"]] = [src]
    for dst in _targets(rows, endpoints, index, obj["sighting_of_ref"]):
        rows.add_edge("SIGHTING_OF", src.ref, dst, {})
    for ref in strings_of(obj.get("observed_data_refs")):
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
            "description": nonblank(obj.get("description")),
            "created": stamp_text(obj.get("created")),
            "modified": stamp_text(obj.get("modified")),
            "start_time": stamp_text(obj.get("start_time")),
            "stop_time": stamp_text(obj.get("stop_time")),
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
