"""The telemetry of a technique as the release load stores it (``rank_telemetry`` on the
Technique, loader/technique_facts.py): ``telemetry_sources``'s rows for every platform, as one
JSON text ``{"v18": [row, ...], "v17": [row, ...]}``, each row an array of its fields in the
order below (a property holds no map, and a list property no list or null)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

V18_FIELDS = ("strategy_id", "strategy", "analytic_id", "platforms", "log_source", "channel",
              "data_component_id", "data_component")  # fmt: skip
V17_FIELDS = ("data_component_id", "data_component", "data_source_id", "data_source",
              "description")  # fmt: skip


def telemetry_texts(v18: list[dict[str, Any]], v17: list[dict[str, Any]]) -> dict[str, str]:
    """``telemetry_sources``'s rows as the JSON text of each technique they name (by id)."""
    rows: dict[str, dict[str, list[list[Any]]]] = defaultdict(lambda: {"v18": [], "v17": []})
    for version, found, fields in (("v18", v18, V18_FIELDS), ("v17", v17, V17_FIELDS)):
        for r in found:
            rows[r["technique_id"]][version].append([r[f] for f in fields])
    for t in rows.values():  # in telemetry_sources' order, ties broken: the same text every load
        for listed in t.values():
            listed.sort(key=lambda r: [(x is None, json.dumps(x, sort_keys=True)) for x in r])
    return {
        tid: json.dumps(t, ensure_ascii=False, separators=(",", ":")) for tid, t in rows.items()
    }


EMPTY = json.dumps({"v18": [], "v17": []}, separators=(",", ":"))
"""What a technique no telemetry shows stores."""


def decode_telemetry(
    technique_id: str, text: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A technique's stored telemetry back as ``telemetry_sources``'s rows (v18, v17)."""
    t = json.loads(text)
    return (
        [{"technique_id": technique_id, **dict(zip(V18_FIELDS, r, strict=True))} for r in t["v18"]],
        [{"technique_id": technique_id, **dict(zip(V17_FIELDS, r, strict=True))} for r in t["v17"]],
    )
