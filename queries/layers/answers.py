"""Answers as layers: :func:`profile_layer`, :func:`heat_layer`, :func:`coverage_layer`,
:func:`gaps_layer` and :func:`telemetry_layer` are thin helpers for the analyses, taking lists of
dicts, and hand :class:`LayerTechnique` entries to :func:`queries.layers.build.build_layer`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from queries.errors import InvalidInput

from .build import build_layer, check_color, check_score, get_field, tactic_list
from .format import (
    ATTACK_URL,
    TECHNIQUE_ID,
    Gradient,
    LayerTechnique,
    as_text,
    is_finite_number,
    technique_url,
)

__all__ = [
    "COMMON_COLOR",
    "PATH_COLORS",
    "PATH_LABELS",
    "PATH_SCORES",
    "coverage_layer",
    "gaps_layer",
    "heat_layer",
    "profile_layer",
    "telemetry_layer",
]

# Heat and gap layers use white to red ("more is hotter"); the Navigator's default gradient (red,
# yellow, green: "low is bad", queries.layers.format.DEFAULT_GRADIENT) is for coverage and
# telemetry.
HEAT_GRADIENT: Final = ("#ffffff", "#ffb3b3", "#e60d0d")
GAP_GRADIENT: Final = ("#ffffff", "#fdae6b", "#e6550d")

# Profile layers: how strongly a technique is tied to the actor.
PATH_SCORES: Final = {"direct": 3, "software": 2, "campaign": 1}
PATH_COLORS: Final = {"direct": "#e60d0d", "software": "#fd8d3c", "campaign": "#fdd0a2"}
PATH_LABELS: Final = {
    "direct": "used directly",
    "software": "via software",
    "campaign": "via campaign",
}
_PATH_HEADS: Final = {"direct": "Direct", "software": "Via software", "campaign": "Via campaign"}
COMMON_COLOR: Final = "#7b2d8e"


def _object_url(stix_id: str) -> str | None:
    """Page of a group (G), software (S) or campaign (C) id; None for anything else."""
    kinds = {"G": "groups", "S": "software", "C": "campaigns"}
    if re.fullmatch(r"[GSC]\d{4}", stix_id or ""):
        return f"{ATTACK_URL}/{kinds[stix_id[0]]}/{stix_id}/"
    return None


def _merge_into(
    merged: dict[str, dict[str, Any]], entry: Any, where: str
) -> tuple[dict[str, Any], str]:
    tid = get_field(entry, "technique_id", get_field(entry, "techniqueID"))
    if not isinstance(tid, str) or not TECHNIQUE_ID.match(tid):
        raise InvalidInput(f"{where}: technique_id {tid!r} is not like T1059.001")
    slot = merged.setdefault(tid, {"tactics": [], "extra_metadata": [], "extra_links": []})
    for tactic in tactic_list(get_field(entry, "tactics", get_field(entry, "tactic")), where):
        if tactic not in slot["tactics"]:
            slot["tactics"].append(tactic)
    slot["extra_metadata"].extend(get_field(entry, "metadata") or [])
    slot["extra_links"].extend(get_field(entry, "links") or [])
    return slot, tid


def _names(value: Any, where: str, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable):
        raise InvalidInput(f"{where}: {what} must be a list of names")
    return [str(v) for v in value if v is not None and str(v) != ""]


def profile_layer(
    uses: Iterable[Mapping[str, Any]],
    *,
    name: str,
    attack_version: str | None,
    actor: str | None = None,
    use_colors: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """What one actor does, with how each technique is tied to it told apart.

    ``uses``: one dict per (technique, way of use)::

        {"technique_id": "T1059.001", "tactics": ["execution"],
         "via": "direct" | "software" | "campaign",
         "source": "Mimikatz", "source_id": "S0002",   # the software or campaign, if any
         "procedure": "APT29 has used PowerShell to ..."}

    Score 3 direct, 2 via software, 1 via campaign (the strongest tie wins when there are
    several); with ``use_colors`` the entry also gets that tie's colour and the layer a legend.
    The comment lists every procedure (with its tie); links go to the technique page and to the
    software / campaign pages. ``options`` go to :func:`build_layer`.
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, use in enumerate(uses):
        where = f"uses[{i}]"
        slot, _ = _merge_into(merged, use, where)
        via = get_field(use, "via", "direct")
        if via not in PATH_SCORES:
            raise InvalidInput(f"{where}: via {via!r} is not one of {', '.join(PATH_SCORES)}")
        source = get_field(use, "source")
        source_id = get_field(use, "source_id")
        procedure = (get_field(use, "procedure") or "").strip()
        slot.setdefault("uses", []).append((via, source, source_id, procedure))

    techniques = []
    for tid, slot in merged.items():
        uses_here = slot.get("uses", [])
        best = max(uses_here, key=lambda u: PATH_SCORES[u[0]])[0]
        lines, meta, links = [], [], [("ATT&CK: " + tid, technique_url(tid))]
        seen_links = {links[0][1]}
        for via, source, source_id, procedure in sorted(
            uses_here, key=lambda u: (-PATH_SCORES[u[0]], str(u[1] or ""))
        ):
            who = f"{source} ({source_id})" if source and source_id else source or source_id
            head = _PATH_HEADS[via] + (f" {who}" if who and via != "direct" else "")
            text = f"{head}: {procedure}" if procedure else head
            if text not in lines:
                lines.append(text)
            meta_item = ("via", f"{via}: {who}" if who and via != "direct" else via)
            if meta_item not in meta:
                meta.append(meta_item)
            url = _object_url(source_id) if source_id and via != "direct" else None
            if url and url not in seen_links:
                seen_links.add(url)
                links.append((f"{_PATH_HEADS[via].split()[-1].capitalize()}: {who}", url))
        techniques.append(
            LayerTechnique(
                technique_id=tid,
                tactics=slot["tactics"],
                score=PATH_SCORES[best],
                color=PATH_COLORS[best] if use_colors else None,
                comment="\n".join(lines),
                metadata=meta + slot["extra_metadata"],
                links=links + slot["extra_links"],
            )
        )
    options.setdefault(
        "description",
        f"Techniques of {actor}: score 3 used directly, 2 via software, 1 via campaign."
        if actor
        else "Score 3 used directly, 2 via software, 1 via campaign.",
    )
    if use_colors:
        options.setdefault("legend", [(PATH_LABELS[via], PATH_COLORS[via]) for via in PATH_SCORES])
    options.setdefault("gradient", Gradient(HEAT_GRADIENT, 0, 3))
    if actor:
        options.setdefault("metadata", [("actor", actor)])
    return build_layer(techniques, name=name, attack_version=attack_version, **options)


def heat_layer(
    entries: Iterable[Mapping[str, Any]],
    *,
    name: str,
    attack_version: str | None,
    actors: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    common_color: str | None = COMMON_COLOR,
    **options: Any,
) -> dict[str, Any]:
    """Where several actors overlap: score = number (or summed weight) of actors per technique.

    ``entries``: ``{"technique_id", "tactics", "actors": [names]}``, one or more per technique
    (actors are merged). ``actors`` is the full set being compared (default: every actor seen);
    a technique used by all of them gets ``common_color`` and a legend item (None turns that
    off). ``weights`` maps actor name to weight (default 1 each; an actor missing from it counts
    1). Actor names go to the entry's metadata (one ``actor`` item each) and comment.
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        slot, _ = _merge_into(merged, entry, where)
        for who in _names(get_field(entry, "actors"), where, "actors"):
            if who not in slot.setdefault("actors", []):
                slot["actors"].append(who)
    everyone = list(actors) if actors is not None else []
    if actors is None:
        for slot in merged.values():
            for who in slot.get("actors", []):
                if who not in everyone:
                    everyone.append(who)
    weights = dict(weights or {})
    for who, weight in weights.items():
        if not is_finite_number(weight):
            raise InvalidInput(f"weights: weight of {who!r} is not a number")
    if common_color is not None:
        check_color(common_color, "common_color")

    techniques = []
    n_all = len(everyone)
    for tid, slot in merged.items():
        who_here = sorted(slot.get("actors", []), key=str.casefold)
        score = sum(weights.get(who, 1) for who in who_here)
        common = bool(n_all) and n_all > 1 and set(everyone) <= set(who_here)
        comment = f"Used by {len(who_here)} of {n_all} actors: " if n_all else "Used by: "
        techniques.append(
            LayerTechnique(
                technique_id=tid,
                tactics=slot["tactics"],
                score=round(score, 6),
                color=common_color if common and common_color else None,
                comment=comment + ", ".join(who_here),
                metadata=[("actor", who) for who in who_here] + slot["extra_metadata"],
                links=[("ATT&CK: " + tid, technique_url(tid)), *slot["extra_links"]],
            )
        )
    if common_color and n_all > 1:
        options.setdefault("legend", [(f"used by all {n_all} actors", common_color)])
    options.setdefault("gradient_colors", HEAT_GRADIENT)
    options.setdefault(
        "description",
        "Score: "
        + ("summed weight" if weights else "number")
        + " of the actors using each technique"
        + (f" ({', '.join(everyone)})" if everyone else "")
        + ".",
    )
    return build_layer(techniques, name=name, attack_version=attack_version, **options)


def coverage_layer(
    entries: Iterable[Mapping[str, Any]],
    *,
    name: str,
    attack_version: str | None,
    **options: Any,
) -> dict[str, Any]:
    """Detection coverage: score = number of rules, comment lists the rule names.

    ``entries``: ``{"technique_id", "tactics", "rules": [rule names]}``, optionally
    ``"rule_count"`` when the names listed are the first of more; an entry with no rules
    scores 0 (uncovered, the gradient's first colour: red by default).
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        slot, _ = _merge_into(merged, entry, where)
        for rule in _names(get_field(entry, "rules"), where, "rules"):
            if rule not in slot.setdefault("rules", []):
                slot["rules"].append(rule)
        count = get_field(entry, "rule_count")
        if isinstance(count, int) and not isinstance(count, bool):
            slot["rule_count"] = max(slot.get("rule_count", 0), count)
    techniques = []
    for tid, slot in merged.items():
        rules = slot.get("rules", [])
        n = max(len(rules), slot.get("rule_count", 0))
        more = f"\n... and {n - len(rules)} more" if n > len(rules) else ""
        comment = (
            f"{n} rule{'s' if n != 1 else ''}:\n" + "\n".join(rules) + more if rules else "No rules"
        )
        techniques.append(
            LayerTechnique(
                technique_id=tid,
                tactics=slot["tactics"],
                score=n,
                comment=comment,
                metadata=[("rules", str(n)), *slot["extra_metadata"]],
                links=[("ATT&CK: " + tid, technique_url(tid)), *slot["extra_links"]],
            )
        )
    options.setdefault("description", "Score: number of detection rules per technique.")
    return build_layer(techniques, name=name, attack_version=attack_version, **options)


def gaps_layer(
    entries: Iterable[Mapping[str, Any]],
    *,
    name: str,
    attack_version: str | None,
    **options: Any,
) -> dict[str, Any]:
    """Gaps to close first: score = priority (higher is more urgent).

    ``entries``: ``{"technique_id", "tactics", "priority": number, "reason": text}`` plus
    optional ``metadata`` / ``links``; the reason goes to the comment. A technique listed twice
    keeps the higher priority and both reasons.
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        slot, _ = _merge_into(merged, entry, where)
        priority = check_score(get_field(entry, "priority"), where)
        if priority is None:
            raise InvalidInput(f"{where}: priority missing")
        slot["priority"] = max(slot.get("priority", priority), priority)
        reason = (get_field(entry, "reason") or "").strip()
        if reason and reason not in slot.setdefault("reasons", []):
            slot["reasons"].append(reason)
    techniques = [
        LayerTechnique(
            technique_id=tid,
            tactics=slot["tactics"],
            score=slot["priority"],
            comment="\n".join(slot.get("reasons", [])),
            metadata=[("priority", as_text(slot["priority"])), *slot["extra_metadata"]],
            links=[("ATT&CK: " + tid, technique_url(tid)), *slot["extra_links"]],
        )
        for tid, slot in merged.items()
    ]
    options.setdefault("gradient_colors", GAP_GRADIENT)
    options.setdefault("sorting", 3)
    options.setdefault("description", "Score: priority of the gap (higher: close it first).")
    return build_layer(techniques, name=name, attack_version=attack_version, **options)


def telemetry_layer(
    entries: Iterable[Mapping[str, Any]],
    *,
    name: str,
    attack_version: str | None,
    **options: Any,
) -> dict[str, Any]:
    """What the collected telemetry can see: score = number of collected sources.

    ``entries``: ``{"technique_id", "tactics", "collected": [sources], "missing": [sources]}``
    where a source is a data component or log source name that can show the technique; the
    comment names both lists. 0 (red by default) means only missing sources could show it.
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        slot, _ = _merge_into(merged, entry, where)
        for key in ("collected", "missing"):
            for source in _names(get_field(entry, key), where, key):
                if source not in slot.setdefault(key, []):
                    slot[key].append(source)
    techniques = []
    for tid, slot in merged.items():
        collected = slot.get("collected", [])
        missing = [s for s in slot.get("missing", []) if s not in collected]
        lines = []
        if collected:
            lines.append("Collected: " + ", ".join(collected))
        if missing:
            lines.append("Not collected: " + ", ".join(missing))
        techniques.append(
            LayerTechnique(
                technique_id=tid,
                tactics=slot["tactics"],
                score=len(collected),
                comment="\n".join(lines) or "No telemetry known",
                metadata=[("collected", s) for s in collected]
                + [("not collected", s) for s in missing]
                + slot["extra_metadata"],
                links=[("ATT&CK: " + tid, technique_url(tid)), *slot["extra_links"]],
            )
        )
    options.setdefault(
        "description", "Score: number of collected telemetry sources that can show the technique."
    )
    return build_layer(techniques, name=name, attack_version=attack_version, **options)
