"""Building a Navigator layer from technique entries.

:func:`build_layer` turns :class:`LayerTechnique` entries (or plain dicts with the same keys) into
a layer dict. A technique in several tactics gets one entry per tactic; the parent of every
sub-technique entry gets ``showSubtechniques: true`` in the same tactic (an entry is added for a
parent that is not in the list) so sub-techniques show under their parents. Every layer built is
checked by :func:`queries.layers.check.validate_layer`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from queries.errors import InvalidInput

from .check import validate_layer
from .format import (
    DEFAULT_GRADIENT,
    DIVIDER,
    DOMAINS,
    HEX_COLOR,
    LAYER_VERSION,
    LAYOUT_VALUES,
    NAVIGATOR_VERSION,
    TACTIC,
    TECHNIQUE_ID,
    URL,
    Gradient,
    LayerTechnique,
    LegendItem,
    LinkItem,
    MetadataItem,
    as_text,
    is_finite_number,
    number,
)

__all__ = ["build_layer", "dump_layer", "gradient_for_scores"]


_ATTACK_VERSION = re.compile(r"^\d+(\.\d+)*$")


def get_field(entry: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a mapping or an attribute from an object (dataclass, pydantic model)."""
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)


def tactic_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise InvalidInput(f"{where}: tactics must be a list of tactic shortnames")
    out: list[str] = []
    for tactic in value:
        if not isinstance(tactic, str) or not TACTIC.match(tactic):
            raise InvalidInput(
                f"{where}: tactic {tactic!r} is not a tactic shortname (like 'defense-evasion')"
            )
        if tactic not in out:
            out.append(tactic)
    return out


def _metadata_items(items: Iterable[Any] | None, where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items or ()):
        if item is DIVIDER or item is None:
            out.append({"divider": True})
        elif isinstance(item, Mapping):
            if item.get("divider") is True:
                out.append({"divider": True})
            elif "name" in item and "value" in item:
                out.append({"name": str(item["name"]), "value": as_text(item["value"])})
            else:
                raise InvalidInput(f"{where} metadata[{i}]: needs name and value, or divider")
        elif isinstance(item, tuple | list) and len(item) == 2:
            out.append({"name": str(item[0]), "value": as_text(item[1])})
        else:
            raise InvalidInput(f"{where} metadata[{i}]: expected (name, value) or DIVIDER")
    return out


def _link_items(items: Iterable[Any] | None, where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items or ()):
        if item is DIVIDER or item is None:
            out.append({"divider": True})
            continue
        if isinstance(item, Mapping):
            if item.get("divider") is True:
                out.append({"divider": True})
                continue
            label, url = item.get("label"), item.get("url")
        elif isinstance(item, tuple | list) and len(item) == 2:
            label, url = item
        else:
            raise InvalidInput(f"{where} links[{i}]: expected (label, url) or DIVIDER")
        if not isinstance(url, str) or not URL.match(url):
            raise InvalidInput(f"{where} links[{i}]: url {url!r} needs a protocol (https://...)")
        out.append({"label": str(label), "url": url})
    return out


def check_color(color: Any, where: str) -> str | None:
    if color is None or color == "":
        return None
    if not isinstance(color, str) or not HEX_COLOR.match(color):
        raise InvalidInput(f"{where}: color {color!r} is not a hex colour like '#ff6666'")
    return color


def check_score(score: Any, where: str) -> float | int | None:
    if score is None:
        return None
    if not is_finite_number(score):
        raise InvalidInput(f"{where}: score {score!r} is not a finite number")
    return number(score)


def _legend(items: Iterable[Any] | None, where: str = "legend") -> list[dict[str, str]]:
    out = []
    label: Any
    color: Any
    for i, item in enumerate(items or ()):
        if isinstance(item, LegendItem):
            label, color = item.label, item.color
        elif isinstance(item, Mapping):
            label, color = item.get("label"), item.get("color")
        elif isinstance(item, tuple | list) and len(item) == 2:
            label, color = item
        else:
            raise InvalidInput(f"{where}[{i}]: expected (label, color)")
        if not isinstance(label, str) or not label:
            raise InvalidInput(f"{where}[{i}]: label must be a non-empty string")
        checked = check_color(color, f"{where}[{i}]")
        if checked is None:
            raise InvalidInput(f"{where}[{i}]: color missing")
        out.append({"label": label, "color": checked})
    return out


def gradient_for_scores(
    scores: Iterable[float | None], colors: Sequence[str] = DEFAULT_GRADIENT
) -> Gradient:
    """A gradient spanning the data: from min(0, lowest score) to the highest score.

    Bounds are whole numbers (floor / ceil): mitreattack-python refuses a layer whose gradient
    bounds are not ints, and a score of 0 keeps the first colour so that "none" stays distinct.
    With no scores, or all scores equal to the lower bound, the range is one wide. When the
    range has fewer whole steps than there are colours, only the first and last colour are kept.
    """
    values = [s for s in scores if s is not None]
    lo = min(0, math.floor(min(values))) if values else 0
    hi = math.ceil(max(values)) if values else 1
    if hi <= lo:
        hi = lo + 1
    if len(colors) < 2:
        raise InvalidInput("gradient: needs at least two colours")
    for c in colors:
        check_color(c, "gradient")
    if hi - lo < len(colors) - 1:
        # Fewer whole steps than colours: mitreattack-python cannot load that gradient, and no
        # whole score would get the middle colours anyway.
        colors = (colors[0], colors[-1])
    return Gradient(tuple(colors), lo, hi)


def _coerce_gradient(value: Any) -> Gradient:
    if isinstance(value, Gradient):
        return value
    if isinstance(value, Mapping):
        colors = value.get("colors")
        lo = value.get("minValue", value.get("min_value"))
        hi = value.get("maxValue", value.get("max_value"))
        if (
            not isinstance(colors, Sequence)
            or isinstance(colors, str)
            or len(colors) < 2
            or not is_finite_number(lo)
            or not is_finite_number(hi)
        ):
            raise InvalidInput("gradient: needs colors (2 or more), minValue and maxValue")
        if hi <= lo:
            raise InvalidInput("gradient: maxValue must be greater than minValue")
        for c in colors:
            check_color(c, "gradient")
        return Gradient(tuple(colors), lo, hi)
    raise InvalidInput("gradient: expected a Gradient or {colors, minValue, maxValue}")


def _as_technique(entry: Any, where: str) -> LayerTechnique:
    if isinstance(entry, LayerTechnique):
        tech = entry
    else:
        tid = get_field(entry, "technique_id", get_field(entry, "techniqueID"))
        tech = LayerTechnique(
            technique_id=tid,
            tactics=get_field(entry, "tactics", get_field(entry, "tactic")) or [],
            score=get_field(entry, "score"),
            color=get_field(entry, "color"),
            comment=get_field(entry, "comment") or "",
            metadata=list(get_field(entry, "metadata") or []),
            links=list(get_field(entry, "links") or []),
            enabled=get_field(entry, "enabled", True),
            show_subtechniques=bool(
                get_field(entry, "show_subtechniques", get_field(entry, "showSubtechniques", False))
            ),
        )
    if not isinstance(tech.technique_id, str) or not TECHNIQUE_ID.match(tech.technique_id):
        raise InvalidInput(f"{where}: technique_id {tech.technique_id!r} is not like T1059.001")
    if not isinstance(tech.enabled, bool):
        raise InvalidInput(f"{where}: enabled must be true or false")
    if not isinstance(tech.comment, str):
        raise InvalidInput(f"{where}: comment must be text")
    return tech


def build_layer(
    techniques: Iterable[LayerTechnique | Mapping[str, Any]],
    *,
    name: str,
    attack_version: str | None,
    domain: str = "enterprise-attack",
    description: str = "",
    platforms: Sequence[str] | None = None,
    gradient: Gradient | Mapping[str, Any] | None = None,
    gradient_colors: Sequence[str] = DEFAULT_GRADIENT,
    legend: Iterable[LegendItem | tuple[str, str] | Mapping[str, str]] = (),
    metadata: Iterable[MetadataItem] = (),
    links: Iterable[LinkItem] = (),
    sorting: int = 0,
    layout: Mapping[str, Any] | None = None,
    hide_disabled: bool = False,
    show_parents: bool = True,
    select_techniques_across_tactics: bool = True,
    select_subtechniques_with_parent: bool = False,
    select_visible_techniques: bool = False,
    show_tactic_row_background: bool = False,
    tactic_row_background: str = "#dddddd",
    custom_data_url: str | None = None,
) -> dict[str, Any]:
    """Build a layer-format 4.5 dict.

    ``techniques``: :class:`LayerTechnique` objects or dicts with the same keys
    (``technique_id``, ``tactics``, ``score``, ``color``, ``comment``, ``metadata``, ``links``,
    ``enabled``, ``show_subtechniques``). Two entries for the same technique and tactic are an
    error. ``attack_version`` is the loaded release ("18.1"), written to ``versions.attack``
    (None leaves it out: the Navigator then assumes its current release). ``platforms`` come
    from the data; None or empty leaves ``filters`` out (all platforms). ``gradient`` defaults to
    :func:`gradient_for_scores` over the scores with ``gradient_colors``.

    With ``show_parents`` (default) the parent of each sub-technique entry gets
    ``showSubtechniques: true`` in the same tactic, and an unscored parent entry is added where
    the parent is missing. Entries are sorted by technique id, then tactic, with the all-tactics
    entry (no ``tactic``) first so that per-tactic entries override it in the Navigator.
    Empty ``description``, ``legendItems``, ``metadata`` and ``links`` are left out.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("layer: name must be a non-empty string")
    if domain not in DOMAINS:
        raise InvalidInput(f"layer: domain {domain!r} is not one of {', '.join(DOMAINS)}")
    if attack_version is not None and (
        not isinstance(attack_version, str) or not _ATTACK_VERSION.match(attack_version)
    ):
        raise InvalidInput(f"layer: attack_version {attack_version!r} is not like '18.1'")
    if sorting not in (0, 1, 2, 3):
        raise InvalidInput("layer: sorting must be 0, 1, 2 or 3")

    entries: dict[tuple[str, str | None], dict[str, Any]] = {}
    for i, raw in enumerate(techniques):
        where = f"techniques[{i}]"
        tech = _as_technique(raw, where)
        tactics = tactic_list(tech.tactics, where)
        score = check_score(tech.score, where)
        color = check_color(tech.color, where)
        meta = _metadata_items(tech.metadata, where)
        tech_links = _link_items(tech.links, where)
        slots: list[str | None] = list(tactics) or [None]
        for tactic in slots:
            key = (tech.technique_id, tactic)
            if key in entries:
                raise InvalidInput(
                    f"{where}: {tech.technique_id}"
                    f"{' in ' + tactic if tactic else ''} is listed twice"
                )
            entry: dict[str, Any] = {"techniqueID": tech.technique_id}
            if tactic is not None:
                entry["tactic"] = tactic
            if score is not None:
                entry["score"] = score
            if color is not None:
                entry["color"] = color
            entry["comment"] = tech.comment
            entry["enabled"] = tech.enabled
            if meta:
                entry["metadata"] = [dict(m) for m in meta]
            if tech_links:
                entry["links"] = [dict(link) for link in tech_links]
            entry["showSubtechniques"] = bool(tech.show_subtechniques)
            entries[key] = entry

    if show_parents:
        _expand_parents(entries)

    ordered = [entries[k] for k in sorted(entries, key=lambda k: (k[0], k[1] or ""))]

    if gradient is None:
        grad = gradient_for_scores((e.get("score") for e in ordered), gradient_colors)
    else:
        grad = _coerce_gradient(gradient)

    versions = {"attack": attack_version} if attack_version is not None else {}
    versions.update(navigator=NAVIGATOR_VERSION, layer=LAYER_VERSION)
    layer: dict[str, Any] = {"name": name, "versions": versions, "domain": domain}
    if description:
        layer["description"] = description
    if custom_data_url:
        layer["customDataURL"] = custom_data_url
    plats = [p for p in (platforms or []) if isinstance(p, str) and p]
    if plats:
        layer["filters"] = {"platforms": list(dict.fromkeys(plats))}
    if sorting:
        layer["sorting"] = sorting  # 0 is the default; mitreattack-python drops it too
    layer["layout"] = _layout(layout)
    layer["hideDisabled"] = hide_disabled
    layer["techniques"] = ordered
    layer["gradient"] = grad.to_dict()
    legend_items = _legend(legend)
    if legend_items:
        layer["legendItems"] = legend_items
    layer["showTacticRowBackground"] = show_tactic_row_background
    layer["tacticRowBackground"] = tactic_row_background
    layer["selectTechniquesAcrossTactics"] = select_techniques_across_tactics
    layer["selectSubtechniquesWithParent"] = select_subtechniques_with_parent
    layer["selectVisibleTechniques"] = select_visible_techniques
    layer_meta = _metadata_items(metadata, "layer")
    if layer_meta:
        layer["metadata"] = layer_meta
    layer_links = _link_items(links, "layer")
    if layer_links:
        layer["links"] = layer_links
    validate_layer(layer)
    return layer


def _expand_parents(entries: dict[tuple[str, str | None], dict[str, Any]]) -> None:
    """Give the parent of every sub-technique entry ``showSubtechniques: true`` in its tactic.

    A missing parent entry is added unscored; where the parent only has an all-tactics entry,
    the added per-tactic one copies it (in the Navigator a per-tactic entry replaces the
    all-tactics one). For an all-tactics sub-technique entry every entry of the parent is set.
    """
    for sub_id, sub_tactic in list(entries):
        if "." not in sub_id:
            continue
        parent_id = sub_id.split(".")[0]
        keys = [(parent_id, sub_tactic)]
        if sub_tactic is None:
            keys += [k for k in entries if k[0] == parent_id and k[1] is not None]
        for key in keys:
            parent = entries.get(key)
            if parent is None:
                template = entries.get((parent_id, None))
                parent = dict(template) if template else {"techniqueID": parent_id}
                if key[1] is not None:
                    parent = {"techniqueID": parent_id, "tactic": key[1], **parent}
                parent.setdefault("comment", "")
                parent.setdefault("enabled", True)
                entries[key] = parent
            parent["showSubtechniques"] = True


def _layout(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "layout": "side",
        "showID": False,
        "showName": True,
        "showAggregateScores": False,
        "countUnscored": False,
        "aggregateFunction": "average",
        "expandedSubtechniques": "none",
    }
    for key, value in (overrides or {}).items():
        if key not in LAYOUT_VALUES:
            raise InvalidInput(f"layout: unknown option {key!r}")
        layout[key] = value
    return layout


def dump_layer(layer: Mapping[str, Any]) -> str:
    """The layer as JSON text, the way a download should look (UTF-8, indented)."""
    return json.dumps(layer, indent=2, ensure_ascii=False) + "\n"
