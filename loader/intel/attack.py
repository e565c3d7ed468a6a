"""ATT&CK references in an export: the ATT&CK nodes an import names (by STIX id or ATT&CK id),
looked up once, and the ATT&CK ids an object claims."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from queries.catalog import Q
from queries.graph import Graph

from .common import ATTACK_SOURCES, ID_IN_NAME, OPENCTI_EXT, extension_of, list_of, nonblank


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


def attack_ids_of(obj: dict[str, Any]) -> list[str]:
    """ATT&CK ids an object claims: external references (mitre-attack, mitre-mobile-attack,
    mitre-ics-attack), OpenCTI's ``x_mitre_id``, or a MISP-style name ("PowerShell - T1059.001")."""
    out: list[str] = []
    for ref in list_of(obj.get("external_references")):
        if isinstance(ref, dict) and ref.get("source_name") in ATTACK_SOURCES:
            ext = nonblank(ref.get("external_id"))
            if ext:
                out.append(ext.strip().upper())
    for value in (obj.get("x_mitre_id"), extension_of(obj, OPENCTI_EXT).get("x_mitre_id")):
        text = nonblank(value)
        if text:
            out.append(text.strip().upper())
    name = nonblank(obj.get("name"))
    if name:
        m = ID_IN_NAME.search(name.strip())
        if m:
            out.append(m.group(1).upper())
    return list(dict.fromkeys(out))
