"""ATT&CK Navigator layers: build, validate, read, combine and render them.

Pure functions over plain data: no database, no web or CLI imports. Services compute the
technique entries from the graph and hand them here; every answer can then be saved as a
Navigator layer (format 4.5, https://github.com/mitre-attack/attack-navigator, file
``layers/spec/v4.5/layerformat.md``).

Building
    :func:`build_layer` turns :class:`LayerTechnique` entries (or plain dicts with the same keys)
    into a layer dict. A technique in several tactics gets one entry per tactic; the parent of
    every sub-technique entry gets ``showSubtechniques: true`` in the same tactic (an entry is
    added for a parent that is not in the list) so sub-techniques show under their parents.
    :func:`profile_layer`, :func:`heat_layer`, :func:`coverage_layer`, :func:`gaps_layer` and
    :func:`telemetry_layer` are thin helpers for the analyses, taking lists of dicts.

Checking and reading
    :func:`validate_layer` checks a layer against the 4.5 rules (plus a few stricter ones that the
    Navigator and mitreattack-python need, listed there) and raises :class:`InvalidInput`.
    :func:`read_layer` reads any 4.x layer a person made (4.0 to 4.5) into a :class:`ParsedLayer`;
    it is lenient about what does not change the meaning (unknown keys, missing versions, old
    versions) and records it in ``ParsedLayer.warnings``, and raises :class:`InvalidInput` with a
    one-line message naming the place (``layer techniques[3]: techniqueID missing``) for anything
    else.

Combining
    :func:`combine_layers` is the Navigator's "create layer from other layers" score expression,
    evaluated safely with :mod:`ast` (numbers, layer variables, ``+ - * /``, unary minus,
    ``min()``, ``max()``, parentheses; nothing else).

Rendering
    :func:`render_svg` and :func:`render_xlsx` wrap mitreattack-python's ``ToSvg`` and
    ``ToExcel`` (imported lazily; :class:`RenderingUnavailable` when it is not installed) and feed
    them a local STIX bundle, never the network. See :func:`render_svg` for the work-arounds.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from queries.errors import InvalidInput, TtpgraphError
from queries.limits import loads

__all__ = [
    "ATTACK_URL",
    "DEFAULT_GRADIENT",
    "DIVIDER",
    "DOMAINS",
    "LAYER_VERSION",
    "NAVIGATOR_VERSION",
    "PATH_COLORS",
    "PATH_SCORES",
    "Gradient",
    "LayerTechnique",
    "LegendItem",
    "ParsedLayer",
    "ParsedTechnique",
    "RenderReport",
    "RenderingUnavailable",
    "build_layer",
    "combine_layers",
    "coverage_layer",
    "dump_layer",
    "gaps_layer",
    "gradient_for_scores",
    "heat_layer",
    "layer_problems",
    "profile_layer",
    "read_layer",
    "read_layers",
    "render_svg",
    "render_xlsx",
    "technique_url",
    "telemetry_layer",
    "validate_layer",
]

DOMAINS: Final = ("enterprise-attack", "mobile-attack", "ics-attack")
LAYER_VERSION: Final = "4.5"
# The Navigator warns about layers whose navigator version is older than 4.9.0; mitreattack-python
# replaces anything that does not start with "5." by "5.0.0" (with a printed warning).
NAVIGATOR_VERSION: Final = "5.1.0"
MIN_NAVIGATOR_VERSION: Final = (4, 9, 0)
ATTACK_URL: Final = "https://attack.mitre.org"

# The Navigator's default gradient (red, yellow, green) reads "low is bad": used for coverage and
# telemetry. Heat and gap layers use white to red ("more is hotter").
DEFAULT_GRADIENT: Final = ("#ff6666", "#ffe766", "#8ec843")
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


class _Divider:
    """Marks a divider line in a metadata or links list (``{"divider": true}`` in the layer)."""

    _instance: _Divider | None = None

    def __new__(cls) -> _Divider:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DIVIDER"


DIVIDER: Final = _Divider()

_TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_TACTIC = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_HEX_COLOR = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
_ATTACK_VERSION = re.compile(r"^\d+(\.\d+)*$")
_LEGACY_DOMAINS = {
    "mitre-enterprise": "enterprise-attack",
    "mitre-mobile": "mobile-attack",
    "mitre-ics": "ics-attack",
}

# Keys of the 4.5 format, for the unknown-key check.
_LAYER_KEYS = frozenset(
    [
        "name",
        "versions",
        "domain",
        "description",
        "customDataURL",
        "filters",
        "sorting",
        "layout",
        "hideDisabled",
        "techniques",
        "gradient",
        "legendItems",
        "showTacticRowBackground",
        "tacticRowBackground",
        "selectTechniquesAcrossTactics",
        "selectSubtechniquesWithParent",
        "selectVisibleTechniques",
        "metadata",
        "links",
    ]
)
_TECHNIQUE_KEYS = frozenset(
    [
        "techniqueID",
        "tactic",
        "comment",
        "enabled",
        "score",
        "color",
        "metadata",
        "links",
        "showSubtechniques",
    ]
)
_LAYOUT_VALUES: dict[str, tuple[Any, ...] | type] = {
    "layout": ("side", "flat", "mini"),
    "showID": bool,
    "showName": bool,
    "showAggregateScores": bool,
    "countUnscored": bool,
    "aggregateFunction": ("average", "min", "max", "sum"),
    "expandedSubtechniques": ("none", "all", "annotated"),
}
_LAYER_BOOLS = (
    "hideDisabled",
    "showTacticRowBackground",
    "selectTechniquesAcrossTactics",
    "selectSubtechniquesWithParent",
    "selectVisibleTechniques",
)


# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------

MetadataItem = tuple[str, Any] | _Divider | Mapping[str, Any]
LinkItem = tuple[str, str] | _Divider | Mapping[str, Any]


@dataclass
class LayerTechnique:
    """One technique of a layer, before it is split into one layer entry per tactic.

    ``tactics`` are tactic shortnames ("execution"); an empty list gives one entry without a
    ``tactic`` field, which the Navigator applies to every tactic of the technique. ``metadata``
    holds ``(name, value)`` pairs and :data:`DIVIDER`; ``links`` holds ``(label, url)`` pairs and
    :data:`DIVIDER`.
    """

    technique_id: str
    tactics: list[str] = field(default_factory=list)
    score: float | None = None
    color: str | None = None
    comment: str = ""
    metadata: list[MetadataItem] = field(default_factory=list)
    links: list[LinkItem] = field(default_factory=list)
    enabled: bool = True
    show_subtechniques: bool = False


@dataclass(frozen=True)
class Gradient:
    colors: tuple[str, ...]
    min_value: float
    max_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "colors": list(self.colors),
            "minValue": _number(self.min_value),
            "maxValue": _number(self.max_value),
        }


@dataclass(frozen=True)
class LegendItem:
    label: str
    color: str

    def to_dict(self) -> dict[str, str]:
        return {"label": self.label, "color": self.color}


@dataclass(frozen=True)
class ParsedTechnique:
    """One entry of a layer as read: ``tactic`` is None when the entry applies to all tactics."""

    technique_id: str
    tactic: str | None
    score: float | None
    color: str | None
    comment: str
    enabled: bool
    show_subtechniques: bool
    metadata: tuple[dict[str, Any], ...] = ()
    links: tuple[dict[str, Any], ...] = ()

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.technique_id, self.tactic)


@dataclass
class ParsedLayer:
    """A layer as read by :func:`read_layer`.

    ``techniques`` keeps file order; when an entry repeats a (techniqueID, tactic) pair the last
    one wins, as in the Navigator (the repetition is reported in ``warnings``).
    """

    name: str
    domain: str
    description: str = ""
    layer_version: str | None = None
    attack_version: str | None = None
    navigator_version: str | None = None
    platforms: list[str] | None = None
    gradient: Gradient | None = None
    legend: list[LegendItem] = field(default_factory=list)
    techniques: list[ParsedTechnique] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def technique_ids(self) -> set[str]:
        return {t.technique_id for t in self.techniques}

    _index: dict[tuple[str, str | None], ParsedTechnique] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def by_key(self) -> dict[tuple[str, str | None], ParsedTechnique]:
        """Entries by (techniqueID, tactic); rebuilt when ``techniques`` changes length."""
        if self._index is None or len(self._index) != len(self.techniques):
            self._index = {t.key: t for t in self.techniques}
        return self._index

    def entry(self, technique_id: str, tactic: str | None = None) -> ParsedTechnique | None:
        """This technique's entry in ``tactic``: the tactic's own, else the all-tactics one."""
        keyed = self.by_key
        found = keyed.get((technique_id, tactic))
        if found is None and tactic is not None:
            found = keyed.get((technique_id, None))
        return found

    def score_of(self, technique_id: str, tactic: str | None = None) -> float | None:
        found = self.entry(technique_id, tactic)
        return None if found is None else found.score


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def technique_url(technique_id: str) -> str:
    """The technique's page on attack.mitre.org: T1059.001 -> .../techniques/T1059/001/."""
    return f"{ATTACK_URL}/techniques/{technique_id.replace('.', '/')}/"


def _object_url(stix_id: str) -> str | None:
    """Page of a group (G), software (S) or campaign (C) id; None for anything else."""
    kinds = {"G": "groups", "S": "software", "C": "campaigns"}
    if re.fullmatch(r"[GSC]\d{4}", stix_id or ""):
        return f"{ATTACK_URL}/{kinds[stix_id[0]]}/{stix_id}/"
    return None


def _number(value: float | int) -> float | int:
    """Whole floats become ints (3.0 -> 3), so layers read back as they were written."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _get(entry: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a mapping or an attribute from an object (dataclass, pydantic model)."""
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)


def _tactic_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise InvalidInput(f"{where}: tactics must be a list of tactic shortnames")
    out: list[str] = []
    for tactic in value:
        if not isinstance(tactic, str) or not _TACTIC.match(tactic):
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
                out.append({"name": str(item["name"]), "value": _text(item["value"])})
            else:
                raise InvalidInput(f"{where} metadata[{i}]: needs name and value, or divider")
        elif isinstance(item, tuple | list) and len(item) == 2:
            out.append({"name": str(item[0]), "value": _text(item[1])})
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
        if not isinstance(url, str) or not _URL.match(url):
            raise InvalidInput(f"{where} links[{i}]: url {url!r} needs a protocol (https://...)")
        out.append({"label": str(label), "url": url})
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_color(color: Any, where: str) -> str | None:
    if color is None or color == "":
        return None
    if not isinstance(color, str) or not _HEX_COLOR.match(color):
        raise InvalidInput(f"{where}: color {color!r} is not a hex colour like '#ff6666'")
    return color


def _check_score(score: Any, where: str) -> float | int | None:
    if score is None:
        return None
    if not _is_finite_number(score):
        raise InvalidInput(f"{where}: score {score!r} is not a finite number")
    return _number(score)


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
        checked = _check_color(color, f"{where}[{i}]")
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
        _check_color(c, "gradient")
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
            or not _is_finite_number(lo)
            or not _is_finite_number(hi)
        ):
            raise InvalidInput("gradient: needs colors (2 or more), minValue and maxValue")
        if hi <= lo:
            raise InvalidInput("gradient: maxValue must be greater than minValue")
        for c in colors:
            _check_color(c, "gradient")
        return Gradient(tuple(colors), lo, hi)
    raise InvalidInput("gradient: expected a Gradient or {colors, minValue, maxValue}")


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def _as_technique(entry: Any, where: str) -> LayerTechnique:
    if isinstance(entry, LayerTechnique):
        tech = entry
    else:
        tid = _get(entry, "technique_id", _get(entry, "techniqueID"))
        tech = LayerTechnique(
            technique_id=tid,
            tactics=_get(entry, "tactics", _get(entry, "tactic")) or [],
            score=_get(entry, "score"),
            color=_get(entry, "color"),
            comment=_get(entry, "comment") or "",
            metadata=list(_get(entry, "metadata") or []),
            links=list(_get(entry, "links") or []),
            enabled=_get(entry, "enabled", True),
            show_subtechniques=bool(
                _get(entry, "show_subtechniques", _get(entry, "showSubtechniques", False))
            ),
        )
    if not isinstance(tech.technique_id, str) or not _TECHNIQUE_ID.match(tech.technique_id):
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
        tactics = _tactic_list(tech.tactics, where)
        score = _check_score(tech.score, where)
        color = _check_color(tech.color, where)
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
        if key not in _LAYOUT_VALUES:
            raise InvalidInput(f"layout: unknown option {key!r}")
        layout[key] = value
    return layout


def dump_layer(layer: Mapping[str, Any]) -> str:
    """The layer as JSON text, the way a download should look (UTF-8, indented)."""
    return json.dumps(layer, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# Builders for the analyses
# --------------------------------------------------------------------------------------------


def _merge_into(
    merged: dict[str, dict[str, Any]], entry: Any, where: str
) -> tuple[dict[str, Any], str]:
    tid = _get(entry, "technique_id", _get(entry, "techniqueID"))
    if not isinstance(tid, str) or not _TECHNIQUE_ID.match(tid):
        raise InvalidInput(f"{where}: technique_id {tid!r} is not like T1059.001")
    slot = merged.setdefault(tid, {"tactics": [], "extra_metadata": [], "extra_links": []})
    for tactic in _tactic_list(_get(entry, "tactics", _get(entry, "tactic")), where):
        if tactic not in slot["tactics"]:
            slot["tactics"].append(tactic)
    slot["extra_metadata"].extend(_get(entry, "metadata") or [])
    slot["extra_links"].extend(_get(entry, "links") or [])
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
        via = _get(use, "via", "direct")
        if via not in PATH_SCORES:
            raise InvalidInput(f"{where}: via {via!r} is not one of {', '.join(PATH_SCORES)}")
        source = _get(use, "source")
        source_id = _get(use, "source_id")
        procedure = (_get(use, "procedure") or "").strip()
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
        for who in _names(_get(entry, "actors"), where, "actors"):
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
        if not _is_finite_number(weight):
            raise InvalidInput(f"weights: weight of {who!r} is not a number")
    if common_color is not None:
        _check_color(common_color, "common_color")

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
        for rule in _names(_get(entry, "rules"), where, "rules"):
            if rule not in slot.setdefault("rules", []):
                slot["rules"].append(rule)
        count = _get(entry, "rule_count")
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
        priority = _check_score(_get(entry, "priority"), where)
        if priority is None:
            raise InvalidInput(f"{where}: priority missing")
        slot["priority"] = max(slot.get("priority", priority), priority)
        reason = (_get(entry, "reason") or "").strip()
        if reason and reason not in slot.setdefault("reasons", []):
            slot["reasons"].append(reason)
    techniques = [
        LayerTechnique(
            technique_id=tid,
            tactics=slot["tactics"],
            score=slot["priority"],
            comment="\n".join(slot.get("reasons", [])),
            metadata=[("priority", _text(slot["priority"])), *slot["extra_metadata"]],
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
            for source in _names(_get(entry, key), where, key):
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


# --------------------------------------------------------------------------------------------
# Checking (shared by validate_layer and read_layer)
# --------------------------------------------------------------------------------------------


class _Findings:
    """Problems found in a layer: ``errors`` always count; ``lenient`` ones only when strict."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.errors: list[str] = []
        self.lenient: list[str] = []

    def error(self, where: str, text: str) -> None:
        self.errors.append(self._at(where, text))

    def warn(self, where: str, text: str) -> None:
        self.lenient.append(self._at(where, text))

    def _at(self, where: str, text: str) -> str:
        place = f"{self.prefix} {where}".strip() if where else self.prefix
        return f"{place}: {text}"


def _version_tuple(text: str) -> tuple[int, ...] | None:
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        return None
    return tuple(int(p) for p in text.strip().split("."))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_items(
    f: _Findings, where: str, items: Any, kind: str, fields: tuple[str, str]
) -> list[dict[str, Any]]:
    """Metadata ({name, value}) or links ({label, url}) lists, with divider items."""
    if not isinstance(items, list):
        f.error(where, f"must be a list, not {_kind(items)}")
        return []
    kept = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            f.error(at, f"must be an object, not {_kind(item)}")
            continue
        if "divider" in item:
            if not isinstance(item["divider"], bool):
                f.error(at, "divider must be true or false")
            extra = set(item) - {"divider"}
            if extra:
                f.warn(at, f"unknown key {sorted(extra)[0]!r} in a divider")
            kept.append({"divider": bool(item["divider"])})
            continue
        a, b = fields
        for key in fields:
            if key not in item:
                f.error(at, f"{key} missing")
        if a in item and not isinstance(item[a], str):
            f.error(at, f"{a} must be a string, not {_kind(item[a])}")
        if b in item and not isinstance(item[b], str):
            if kind == "metadata" and (_is_number(item[b]) or isinstance(item[b], bool)):
                f.warn(at, f"{b} should be a string, not {_kind(item[b])}")
            else:
                f.error(at, f"{b} must be a string, not {_kind(item[b])}")
        if kind == "links" and isinstance(item.get("url"), str) and not _URL.match(item["url"]):
            f.warn(at, "url needs a protocol such as https://")
        extra = set(item) - set(fields)
        if extra:
            f.warn(at, f"unknown key {sorted(extra)[0]!r}")
        if all(k in item for k in fields):
            kept.append({a: item[a], b: item[b]})
    return kept


def _check_color_field(f: _Findings, where: str, value: Any) -> str | None:
    if not isinstance(value, str):
        f.error(where, f"color must be a string, not {_kind(value)}")
        return None
    if value and not _HEX_COLOR.match(value):
        f.warn(where, f"color {value!r} is not a hex colour like '#ff6666'")
    return value or None


def _check_layer(data: Any, f: _Findings) -> ParsedLayer | None:
    """Check one layer; returns what could be read (None when it is not a layer at all)."""
    if not isinstance(data, dict):
        f.error("", f"expected a layer object, not {_kind(data)}")
        return None
    if "techniques" not in data and "name" not in data and "domain" not in data:
        f.error("", "not a Navigator layer (no name, domain or techniques)")
        return None

    # versions
    layer_version = attack_version = navigator_version = None
    if "versions" in data:
        versions = data["versions"]
        if not isinstance(versions, dict):
            f.error("versions", f"must be an object, not {_kind(versions)}")
        else:
            lv = versions.get("layer")
            if lv is None:
                f.warn("versions", "layer missing (read as 4.5)")
            elif not isinstance(lv, str):
                f.error("versions.layer", f"must be a string, not {_kind(lv)}")
            else:
                lv_parts = _version_tuple(lv)
                if lv_parts is None or lv_parts[0] != 4:
                    f.error(
                        "versions.layer",
                        f"layer format {lv!r} is not supported (4.0 to 4.5 are)",
                    )
                else:
                    layer_version = lv
                    if lv != LAYER_VERSION:
                        f.warn("versions.layer", f"is {lv}, not {LAYER_VERSION}")
            nv = versions.get("navigator")
            if nv is None:
                f.warn("versions", "navigator missing")
            elif not isinstance(nv, str):
                f.error("versions.navigator", f"must be a string, not {_kind(nv)}")
            else:
                navigator_version = nv
                parsed_nv = _version_tuple(nv)
                if parsed_nv is None or parsed_nv < MIN_NAVIGATOR_VERSION:
                    f.warn("versions.navigator", f"{nv!r} is older than 4.9.0")
            av = versions.get("attack")
            if av is not None:
                if isinstance(av, str):
                    attack_version = av
                elif _is_number(av):
                    attack_version = _text(av)
                    f.warn("versions.attack", "should be a string")
                else:
                    f.error("versions.attack", f"must be a string, not {_kind(av)}")
            extra = set(versions) - {"layer", "navigator", "attack"}
            if extra:
                f.warn("versions", f"unknown key {sorted(extra)[0]!r}")
    elif "version" in data:
        old = data["version"]
        f.error("version", f"layer format {old!r} is not supported (4.0 to 4.5 are)")
    else:
        f.warn("", "versions missing (read as layer format 4.5)")

    # name, domain, description
    name = data.get("name")
    if name is None:
        f.error("", "name missing")
    elif not isinstance(name, str):
        f.error("name", f"must be a string, not {_kind(name)}")
    domain = data.get("domain")
    if domain is None:
        f.error("", "domain missing")
    elif not isinstance(domain, str):
        f.error("domain", f"must be a string, not {_kind(domain)}")
    elif domain in _LEGACY_DOMAINS:
        f.warn("domain", f"{domain!r} is the old name of {_LEGACY_DOMAINS[domain]!r}")
        domain = _LEGACY_DOMAINS[domain]
    elif domain not in DOMAINS:
        f.error("domain", f"{domain!r} is not one of {', '.join(DOMAINS)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        f.error("description", f"must be a string, not {_kind(description)}")
        description = ""
    if "customDataURL" in data and not isinstance(data["customDataURL"], str):
        f.error("customDataURL", f"must be a string, not {_kind(data['customDataURL'])}")

    # filters
    platforms: list[str] | None = None
    if "filters" in data:
        filters = data["filters"]
        if not isinstance(filters, dict):
            f.error("filters", f"must be an object, not {_kind(filters)}")
        else:
            if "platforms" in filters:
                plats = filters["platforms"]
                if not isinstance(plats, list) or not all(isinstance(p, str) for p in plats):
                    f.error("filters.platforms", "must be a list of strings")
                elif not plats:
                    f.warn("filters.platforms", "is empty (every technique would be hidden)")
                else:
                    platforms = list(plats)
            extra = set(filters) - {"platforms"}
            if extra:
                f.warn("filters", f"unknown key {sorted(extra)[0]!r}")

    # sorting, layout, booleans, tacticRowBackground
    if "sorting" in data:
        sorting = data["sorting"]
        if not (isinstance(sorting, int) and not isinstance(sorting, bool)) or sorting not in (
            0,
            1,
            2,
            3,
        ):
            f.error("sorting", f"must be 0, 1, 2 or 3, not {sorting!r}")
    if "layout" in data:
        layout = data["layout"]
        if not isinstance(layout, dict):
            f.error("layout", f"must be an object, not {_kind(layout)}")
        else:
            for key, value in layout.items():
                allowed = _LAYOUT_VALUES.get(key)
                if allowed is None:
                    f.warn("layout", f"unknown key {key!r}")
                elif allowed is bool:
                    if not isinstance(value, bool):
                        f.error(f"layout.{key}", f"must be true or false, not {value!r}")
                elif isinstance(allowed, tuple) and value not in allowed:
                    f.error(f"layout.{key}", f"must be one of {', '.join(allowed)}")
    for key in _LAYER_BOOLS:
        if key in data and not isinstance(data[key], bool):
            f.error(key, f"must be true or false, not {data[key]!r}")
    if "tacticRowBackground" in data:
        _check_color_field(f, "tacticRowBackground", data["tacticRowBackground"])

    # gradient
    gradient = None
    if "gradient" in data:
        g = data["gradient"]
        if not isinstance(g, dict):
            f.error("gradient", f"must be an object, not {_kind(g)}")
        else:
            colors, lo, hi = g.get("colors"), g.get("minValue"), g.get("maxValue")
            ok = True
            if not isinstance(colors, list) or not all(isinstance(c, str) for c in colors):
                f.error("gradient.colors", "must be a list of strings")
                ok = False
            elif len(colors) < 2:
                f.error("gradient.colors", "needs at least two colours")
                ok = False
            else:
                for i, c in enumerate(colors):
                    if not _HEX_COLOR.match(c):
                        f.warn(f"gradient.colors[{i}]", f"{c!r} is not a hex colour")
            for key, value in (("minValue", lo), ("maxValue", hi)):
                if value is None:
                    f.error("gradient", f"{key} missing")
                    ok = False
                elif not _is_finite_number(value):
                    f.error(f"gradient.{key}", f"must be a number, not {_kind(value)}")
                    ok = False
            extra = set(g) - {"colors", "minValue", "maxValue"}
            if extra:
                f.warn("gradient", f"unknown key {sorted(extra)[0]!r}")
            if ok and isinstance(colors, list) and isinstance(lo, int | float):
                assert isinstance(hi, int | float)  # checked above
                if hi <= lo:
                    f.warn("gradient", "maxValue must be greater than minValue")
                gradient = Gradient(tuple(colors), lo, hi)

    # legend
    legend: list[LegendItem] = []
    if "legendItems" in data:
        items = data["legendItems"]
        if not isinstance(items, list):
            f.error("legendItems", f"must be a list, not {_kind(items)}")
        else:
            for i, item in enumerate(items):
                at = f"legendItems[{i}]"
                if not isinstance(item, dict):
                    f.error(at, f"must be an object, not {_kind(item)}")
                    continue
                label, color = item.get("label"), item.get("color")
                if not isinstance(label, str):
                    f.error(at, "label missing" if label is None else "label must be a string")
                if color is None:
                    f.error(at, "color missing")
                else:
                    color = _check_color_field(f, at, color)
                extra = set(item) - {"label", "color"}
                if extra:
                    f.warn(at, f"unknown key {sorted(extra)[0]!r}")
                if isinstance(label, str) and isinstance(color, str):
                    legend.append(LegendItem(label, color))

    if "metadata" in data:
        _check_items(f, "metadata", data["metadata"], "metadata", ("name", "value"))
    if "links" in data:
        _check_items(f, "links", data["links"], "links", ("label", "url"))

    # techniques
    # Keyed by (technique, tactic): a repeated entry replaces the earlier one and moves to the
    # end, in constant time (a list rebuilt per repeat made 16k entries take 37 s).
    parsed: dict[tuple[str, str | None], ParsedTechnique] = {}
    seen: dict[tuple[str, str | None], int] = {}
    techniques = data.get("techniques", [])
    if not isinstance(techniques, list):
        f.error("techniques", f"must be a list, not {_kind(techniques)}")
        techniques = []
    for i, t in enumerate(techniques):
        tech = _check_technique(f, f"techniques[{i}]", t)
        if tech is None:
            continue
        if tech.key in seen:
            tactic_text = f" in {tech.tactic}" if tech.tactic else ""
            f.warn(
                f"techniques[{i}]",
                f"{tech.technique_id}{tactic_text} repeats techniques[{seen[tech.key]}]"
                " (the later entry wins)",
            )
            del parsed[tech.key]
        seen[tech.key] = i
        parsed[tech.key] = tech

    extra = set(data) - _LAYER_KEYS - {"version"}
    for key in sorted(extra):
        f.warn(key, "unknown key")

    if not isinstance(name, str) or not isinstance(domain, str) or domain not in DOMAINS:
        return None
    return ParsedLayer(
        name=name,
        domain=domain,
        description=description,
        layer_version=layer_version,
        attack_version=attack_version,
        navigator_version=navigator_version,
        platforms=platforms,
        gradient=gradient,
        legend=legend,
        techniques=list(parsed.values()),
        raw=data,
    )


def _check_technique(f: _Findings, at: str, t: Any) -> ParsedTechnique | None:
    if not isinstance(t, dict):
        f.error(at, f"must be an object, not {_kind(t)}")
        return None
    before = len(f.errors)
    tid = t.get("techniqueID")
    if tid is None:
        f.error(at, "techniqueID missing")
    elif not isinstance(tid, str):
        f.error(at, f"techniqueID must be a string, not {_kind(tid)}")
    elif not _TECHNIQUE_ID.match(tid):
        f.error(at, f"techniqueID {tid!r} is not an ATT&CK technique id like T1059.001")
    tactic = t.get("tactic")
    if tactic is not None:
        if not isinstance(tactic, str):
            f.error(at, f"tactic must be a string, not {_kind(tactic)}")
        elif not _TACTIC.match(tactic):
            f.error(at, f"tactic {tactic!r} is not a tactic shortname like 'defense-evasion'")
    score = t.get("score")
    if "score" in t:
        if score is None:
            f.warn(at, "score is null (read as unscored)")
        elif not _is_finite_number(score):
            f.error(at, f"score must be a number, not {_kind(score)}")
    comment = t.get("comment", "")
    if not isinstance(comment, str):
        f.error(at, f"comment must be a string, not {_kind(comment)}")
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        f.error(at, f"enabled must be true or false, not {enabled!r}")
    show = t.get("showSubtechniques", False)
    if not isinstance(show, bool):
        f.error(at, f"showSubtechniques must be true or false, not {show!r}")
    color = None
    if "color" in t:
        color = _check_color_field(f, at, t["color"])
    metadata: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    if "metadata" in t:
        metadata = _check_items(f, f"{at}.metadata", t["metadata"], "metadata", ("name", "value"))
    if "links" in t:
        links = _check_items(f, f"{at}.links", t["links"], "links", ("label", "url"))
    extra = set(t) - _TECHNIQUE_KEYS
    for key in sorted(extra):
        f.warn(at, f"unknown key {key!r}")
    if len(f.errors) > before:
        return None
    return ParsedTechnique(
        technique_id=str(tid),
        tactic=tactic,
        score=_number(score) if isinstance(score, int | float) else None,
        color=color,
        comment=comment,
        enabled=enabled,
        show_subtechniques=show,
        metadata=tuple(metadata),
        links=tuple(links),
    )


def layer_problems(layer: Any) -> list[str]:
    """Every way ``layer`` breaks the rules of :func:`validate_layer` (empty when it is fine)."""
    f = _Findings("layer")
    _check_layer(layer, f)
    return f.errors + f.lenient


def validate_layer(layer: Any) -> None:
    """Raise :class:`InvalidInput` unless ``layer`` follows layer format 4.5.

    The spec's rules (types, required fields, allowed values, ``maxValue > minValue``), plus
    these, stricter than the spec, that the Navigator or mitreattack-python need:
    ``versions`` present with ``layer`` "4.5" and ``navigator`` >= 4.9.0; no unknown keys
    (mitreattack-python refuses the whole layer for one); colours in hex (``#rgb``,
    ``#rrggbb``, ``#rrggbbaa``); link urls with a protocol; metadata values as strings; no two
    entries for the same technique and tactic; ``filters.platforms`` not empty. The message
    names the first problem and says how many more there are.
    """
    problems = layer_problems(layer)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(problems[0] + more)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _looks_like_path(text: str) -> bool:
    """A string is a path when it names a file, ends in .json or has a slash, and is one line."""
    if "\n" in text or len(text) > 4096 or text.lstrip().startswith(("{", "[")):
        return False
    if text.endswith(".json") or "/" in text or "\\" in text:
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _load_json(data: dict[str, Any] | list[Any] | str | bytes | Path) -> tuple[Any, str]:
    """Parse ``data`` (object, JSON text or bytes, or a path) and name it for messages."""
    if isinstance(data, dict | list):
        return data, "layer"
    label = "layer"
    if isinstance(data, str):
        data = data.removeprefix("\ufeff")
    if isinstance(data, Path) or (isinstance(data, str) and _looks_like_path(data)):
        path = Path(data)
        label = f"layer {path.name}"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{label}: cannot be read ({exc.strerror or exc})") from None
        data = raw
    if isinstance(data, bytes):
        try:
            if data.startswith((b"\xff\xfe", b"\xfe\xff")):
                # mitreattack-python's Layer.to_file writes UTF-16.
                text = data.decode("utf-16")
            else:
                text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(f"{label}: is not UTF-8 or UTF-16 text") from None
    elif isinstance(data, str):
        text = data
    else:
        raise InvalidInput(f"{label}: expected a layer object, JSON text or a file path")
    try:
        return loads(text, label), label
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{label}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def read_layers(data: dict[str, Any] | list[Any] | str | bytes | Path) -> list[ParsedLayer]:
    """Read a layer file that may hold one layer or a list of layers (4.5 allows both)."""
    obj, label = _load_json(data)
    items = obj if isinstance(obj, list) else [obj]
    if isinstance(obj, list) and not obj:
        raise InvalidInput(f"{label}: the list holds no layers")
    out = []
    for i, item in enumerate(items):
        prefix = f"{label} [{i}]" if isinstance(obj, list) else label
        f = _Findings(prefix)
        parsed = _check_layer(item, f)
        if f.errors or parsed is None:
            first = f.errors[0] if f.errors else f"{prefix}: not a Navigator layer"
            more = f" (and {len(f.errors) - 1} more)" if len(f.errors) > 1 else ""
            raise InvalidInput(first + more)
        parsed.warnings = f.lenient
        out.append(parsed)
    return out


def read_layer(data: dict[str, Any] | list[Any] | str | bytes | Path) -> ParsedLayer:
    """Read one Navigator layer of format 4.0 to 4.5 (as written by people or tools).

    ``data`` is a dict, JSON text, bytes, or a path (a ``Path``, or a one-line string that ends
    in ``.json``, holds a slash or names an existing file). UTF-8 (with or without BOM) and
    UTF-16 files are read. A file holding a list of one layer is accepted; use
    :func:`read_layers` for more. Anything that would change
    the meaning (wrong types, missing ``techniqueID``/``name``/``domain``, format 3.x or 5.x)
    raises :class:`InvalidInput` naming the place; the rest goes to ``warnings``.
    """
    layers = read_layers(data)
    if len(layers) != 1:
        raise InvalidInput(
            f"layer: the file holds {len(layers)} layers; read them with read_layers"
        )
    return layers[0]


# --------------------------------------------------------------------------------------------
# Combining
# --------------------------------------------------------------------------------------------

_MAX_EXPRESSION = 500
_ALLOWED_HELP = "use numbers, the layer variables, + - * /, min(), max() and parentheses"


def _compile_expression(expression: str, variables: Iterable[str]) -> ast.expr:
    """Parse and check ``expression``: only the allowed nodes, only known variables."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("expression: empty")
    if len(expression) > _MAX_EXPRESSION:
        raise InvalidInput(f"expression: longer than {_MAX_EXPRESSION} characters")
    known = set(variables)
    try:
        tree = ast.parse(expression.strip().lower(), mode="eval")
    except SyntaxError as exc:
        at = f" at column {exc.offset}" if exc.offset else ""
        raise InvalidInput(f"expression: {exc.msg}{at}") from None
    except (RecursionError, MemoryError, ValueError):
        raise InvalidInput("expression: too deeply nested") from None

    def check(node: ast.AST, depth: int = 0) -> None:
        if depth > 50:
            raise InvalidInput("expression: too deeply nested")
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
                raise InvalidInput(f"expression: operator not allowed ({_ALLOWED_HELP})")
            check(node.left, depth + 1)
            check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise InvalidInput(f"expression: operator not allowed ({_ALLOWED_HELP})")
            check(node.operand, depth + 1)
        elif isinstance(node, ast.Constant):
            if not _is_finite_number(node.value):
                raise InvalidInput(f"expression: {node.value!r} is not allowed ({_ALLOWED_HELP})")
        elif isinstance(node, ast.Name):
            if node.id in ("min", "max"):
                raise InvalidInput(f"expression: {node.id} must be called, like {node.id}(a, b)")
            if node.id not in known:
                names = ", ".join(sorted(known)) or "none"
                raise InvalidInput(
                    f"expression: unknown variable {node.id!r} (the layers are {names})"
                )
        elif isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name) or func.id not in ("min", "max"):
                what = func.id if isinstance(func, ast.Name) else ast.unparse(func)
                raise InvalidInput(
                    f"expression: function {what!r} is not allowed (only min and max)"
                )
            if node.keywords or not node.args:
                raise InvalidInput(f"expression: {func.id}() takes one or more values")
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    raise InvalidInput(f"expression: * is not allowed ({_ALLOWED_HELP})")
                check(arg, depth + 1)
        elif isinstance(node, ast.Attribute):
            raise InvalidInput("expression: attribute access is not allowed")
        else:
            snippet = ast.unparse(node)[:40]
            raise InvalidInput(f"expression: {snippet!r} is not allowed ({_ALLOWED_HELP})")

    check(tree.body)
    return tree.body


class _DivisionByZero(Exception):
    pass


def _evaluate(node: ast.expr, scope: Mapping[str, float]) -> float:
    """Evaluate a checked expression tree (see :func:`_compile_expression`)."""
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # a number: checked before
    if isinstance(node, ast.Name):
        return scope[node.id]
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, scope)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, scope), _evaluate(node.right, scope)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise _DivisionByZero
        return left / right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        values = [_evaluate(arg, scope) for arg in node.args]
        return min(values) if node.func.id == "min" else max(values)
    raise InvalidInput("expression: not allowed")  # unreachable after _compile_expression


def combine_layers(
    layers: Mapping[str, ParsedLayer | Mapping[str, Any]],
    expression: str,
    *,
    name: str = "layer by operation",
    description: str | None = None,
    attack_version: str | None = None,
    keep_zero: bool = True,
    comments_from: str | None = None,
    colors_from: str | None = None,
    enabled_from: str | None = None,
    links_from: str | None = None,
    metadata_from: str | None = None,
    filters_from: str | None = None,
    legend_from: str | None = None,
    gradient_from: str | None = None,
    gradient_colors: Sequence[str] = DEFAULT_GRADIENT,
) -> dict[str, Any]:
    """A new layer whose scores are ``expression`` over the layers' scores, as in the Navigator.

    ``layers`` binds variable names (``a``, ``b``, …; lower case, as the Navigator lower-cases
    the expression) to :class:`ParsedLayer` objects (or raw layer dicts, read with
    :func:`read_layer`). The expression may use numbers, the variables, ``+ - * /``, unary
    minus, ``min(...)``, ``max(...)`` and parentheses; it is parsed with :mod:`ast` and nothing
    else is accepted (no names, calls or attributes beyond those): :class:`InvalidInput`.

    Rules, following the Navigator's layer operation:

    * Scores are computed per (technique, tactic) entry found in any of the layers. A layer's
      value for it is its entry in that tactic, else its all-tactics entry (no ``tactic``).
    * A technique that is missing from a layer, or unscored there, counts as 0.
    * A result is written only where at least one layer scores the technique.
    * Division by zero leaves that technique out of the result.
    * ``keep_zero`` (default True, as in the Navigator) keeps results that are 0; False drops
      them (handy for ``a - b``: "in a but not in b").
    * ``*_from`` copy that field of the named layer's entries (comments, colors, enabled, links,
      metadata), or its filters / legend / gradient, like the Navigator's dialog. Otherwise the
      gradient spans the results (:func:`gradient_for_scores`).

    All layers must share a domain. ``attack_version`` defaults to the highest one the layers
    give.
    """
    if not layers:
        raise InvalidInput("combine: no layers given")
    parsed: dict[str, ParsedLayer] = {}
    for var, layer in layers.items():
        if not isinstance(var, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", var):
            raise InvalidInput(f"combine: variable {var!r} must be lower case, like a, b, c")
        if var in ("min", "max"):
            raise InvalidInput(f"combine: {var!r} cannot name a layer")
        parsed[var] = layer if isinstance(layer, ParsedLayer) else read_layer(dict(layer))
    tree = _compile_expression(expression, parsed)
    for option, source in (
        ("comments_from", comments_from),
        ("colors_from", colors_from),
        ("enabled_from", enabled_from),
        ("links_from", links_from),
        ("metadata_from", metadata_from),
        ("filters_from", filters_from),
        ("legend_from", legend_from),
        ("gradient_from", gradient_from),
    ):
        if source is not None and source not in parsed:
            raise InvalidInput(
                f"combine: {option} names {source!r}, which is not one of the layers"
            )

    domains = {p.domain for p in parsed.values()}
    if len(domains) > 1:
        raise InvalidInput(
            f"combine: the layers are from different domains ({', '.join(sorted(domains))})"
        )
    domain = domains.pop()
    if attack_version is None:
        found = [p.attack_version for p in parsed.values() if p.attack_version]
        good = [v for v in found if _version_tuple(v) is not None]
        attack_version = max(good, key=lambda v: _version_tuple(v) or ()) if good else None

    keys: list[tuple[str, str | None]] = []
    seen: set[tuple[str, str | None]] = set()
    for p in parsed.values():
        for t in p.techniques:
            if t.key not in seen:
                seen.add(t.key)
                keys.append(t.key)

    scores: dict[tuple[str, str | None], float | int] = {}
    for tid, tactic in keys:
        scope: dict[str, float] = {}
        misses = 0
        for var, p in parsed.items():
            value = p.score_of(tid, tactic)
            if value is None:
                misses += 1
                value = 0
            scope[var] = float(value)
        if misses == len(parsed):
            continue
        try:
            result = _evaluate(tree, scope)
        except _DivisionByZero:
            continue
        if not math.isfinite(result):
            continue
        result = _number(round(result, 6))
        if result == 0 and not keep_zero:
            continue
        scores[(tid, tactic)] = result

    # Entries: the scored ones plus those of the layers fields are copied from.
    fields: dict[tuple[str, str | None], dict[str, Any]] = {k: {} for k in scores}
    copies = (
        (comments_from, "comment"),
        (colors_from, "color"),
        (enabled_from, "enabled"),
        (links_from, "links"),
        (metadata_from, "metadata"),
    )
    for source, attr in copies:
        if source is None:
            continue
        for t in parsed[source].techniques:
            copied = getattr(t, attr)
            if attr == "color" and not (copied and _HEX_COLOR.match(copied)):
                continue  # read_layer lets other colour notations through; layers need hex
            if attr == "links":
                copied = tuple(x for x in copied if "divider" in x or _URL.match(x.get("url", "")))
            fields.setdefault(t.key, {})[attr] = copied

    techniques = []
    for key in fields:
        tid, tactic = key
        got = fields[key]
        techniques.append(
            LayerTechnique(
                technique_id=tid,
                tactics=[tactic] if tactic else [],
                score=scores.get(key),
                color=got.get("color"),
                comment=got.get("comment", ""),
                enabled=got.get("enabled", True),
                metadata=list(got.get("metadata", ())),
                links=list(got.get("links", ())),
            )
        )

    gradient: Gradient | None = None
    if gradient_from is not None:
        gradient = parsed[gradient_from].gradient
    platforms = parsed[filters_from].platforms if filters_from else None
    legend = [(i.label, i.color) for i in parsed[legend_from].legend] if legend_from else []
    if description is None:
        bound = ", ".join(f"{var} = {p.name}" for var, p in parsed.items())
        description = f"Score = {expression.strip()} where {bound}."
    return build_layer(
        techniques,
        name=name,
        attack_version=attack_version,
        domain=domain,
        description=description,
        platforms=platforms,
        gradient=gradient,
        gradient_colors=gradient_colors,
        legend=legend,
        metadata=[("expression", expression.strip())],
        show_parents=True,
    )


# --------------------------------------------------------------------------------------------
# Rendering (mitreattack-python, imported lazily)
# --------------------------------------------------------------------------------------------


class RenderingUnavailable(TtpgraphError):
    """mitreattack-python is not installed, so layers cannot be drawn as SVG or Excel."""

    status = 501
    title = "Rendering unavailable"


@dataclass(frozen=True)
class RenderReport:
    """What a render wrote, how long it took and what mitreattack-python printed."""

    path: Path
    seconds: float
    messages: list[str]


# The exporters print, are not known to be thread-safe, and stdout capture is process-wide.
_RENDER_LOCK = threading.RLock()
# What MatrixGen queries: the only objects worth parsing out of a 25,000-object bundle.
_MATRIX_TYPES = frozenset({"x-mitre-matrix", "x-mitre-tactic", "attack-pattern"})


# The install hint, in the README's words.
RENDER_HINT = "SVG/Excel rendering needs mitreattack-python: pip install -e '.[render]'"


def _mitreattack() -> Any:
    try:
        from mitreattack.navlayers import Layer, ToExcel, ToSvg
        from mitreattack.navlayers.exporters.to_svg import SVGConfig
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RenderingUnavailable(f"{RENDER_HINT}: {exc}") from None
    return Layer, ToSvg, ToExcel, SVGConfig


@dataclass(frozen=True)
class _Bundle:
    domain: str
    store: Any  # stix2.MemoryStore of the matrix objects
    # technique id -> ids of other techniques with the same name (23 names in Enterprise 18.1)
    namesakes: Mapping[str, tuple[str, ...]]
    # (technique id, tactic) -> ids of other techniques with the same name in that tactic
    namesakes_in: Mapping[tuple[str, str], tuple[str, ...]]
    # technique id -> its tactic shortnames
    tactics: Mapping[str, tuple[str, ...]]


@lru_cache(maxsize=4)
def _bundle_store(path: str, mtime_ns: int, size: int) -> _Bundle:
    """The matrix objects of a local bundle, parsed once per file state.

    Parsing only matrices, tactics and techniques takes ~0.9 s for Enterprise instead of ~7 s
    for the whole bundle (``source='local'``), and gives the same matrix.
    """
    from stix2 import MemoryStore

    name = Path(path).name
    try:
        with open(path, encoding="utf-8") as fh:
            bundle = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"bundle {name}: cannot be read as JSON ({exc})") from None
    objects = bundle.get("objects") if isinstance(bundle, dict) else None
    if not isinstance(objects, list):
        raise InvalidInput(f"bundle {name}: not a STIX bundle (no objects)")
    keep = [o for o in objects if isinstance(o, dict) and o.get("type") in _MATRIX_TYPES]
    live = [o for o in keep if not o.get("revoked") and not o.get("x_mitre_deprecated")]

    def attack_id(obj: Mapping[str, Any]) -> str | None:
        for ref in obj.get("external_references", []):
            if ref.get("source_name") == "mitre-attack":
                return ref.get("external_id")
        return None

    domains = {attack_id(o) for o in live if o["type"] == "x-mitre-matrix"} & set(DOMAINS)
    if len(domains) != 1:
        raise InvalidInput(f"bundle {name}: holds no single ATT&CK matrix")
    by_name: dict[str, set[str]] = {}
    by_tactic_name: dict[tuple[str, str], set[str]] = {}
    tactics: dict[str, tuple[str, ...]] = {}
    for o in live:
        tid = attack_id(o)
        if o["type"] != "attack-pattern" or not tid:
            continue
        tactics[tid] = tuple(p.get("phase_name", "") for p in o.get("kill_chain_phases", []))
        by_name.setdefault(o.get("name", ""), set()).add(tid)
        for phase in o.get("kill_chain_phases", []):
            key = (phase.get("phase_name", ""), o.get("name", ""))
            by_tactic_name.setdefault(key, set()).add(tid)
    namesakes = {
        tid: tuple(sorted(ids - {tid})) for ids in by_name.values() if len(ids) > 1 for tid in ids
    }
    namesakes_in = {
        (tid, tactic): tuple(sorted(ids - {tid}))
        for (tactic, _), ids in by_tactic_name.items()
        if len(ids) > 1
        for tid in ids
    }
    return _Bundle(
        domain=str(domains.pop()),
        store=MemoryStore(stix_data=keep, allow_custom=True),
        namesakes=namesakes,
        namesakes_in=namesakes_in,
        tactics=tactics,
    )


def _load_bundle(bundle_path: str | Path) -> _Bundle:
    path = Path(bundle_path).resolve()
    try:
        st = path.stat()
    except OSError:
        raise InvalidInput(f"bundle {path}: not found") from None
    return _bundle_store(str(path), st.st_mtime_ns, st.st_size)


def _for_mitreattack(
    layer: Mapping[str, Any], notes: list[str], *, svg: bool, bundle: _Bundle
) -> dict[str, Any]:
    """A copy of ``layer`` that mitreattack-python loads and draws as the Navigator would.

    * keys outside the 4.5 format go (it refuses the whole layer for one), and so do layer-level
      links (it ignores them), empty ``filters.platforms`` (it crashes on them) and ``score:
      null`` (it refuses the layer);
    * metadata dividers go (it only knows its own ``{"name": "DIVIDER"}`` form and prints a
      complaint for each ``{"divider": true}``), and metadata values become strings;
    * the gradient is taken out (see :func:`_navigator_gradient`, attached after loading): its
      own mixes colours in HSL (white to red passes through blue and green), refuses float
      bounds and ranges with fewer steps than colours, and reads past its colour curve when the
      range does not divide by the steps. Scores are still truncated to ints by it (2.5 is
      drawn as 2);
    * colours become ``#rrggbb`` (``#rgb`` expanded, ``#rrggbbaa`` laid over white); a colour
      that is not hex goes, with a note;
    * ``versions`` is filled in (its SVG header reads ``versions.attack``, and it crashes
      without ``versions``), and a navigator version not starting with "5." becomes
      NAVIGATOR_VERSION (it would print a warning and do the same);
    * ``sorting`` 1 (descending by name) becomes 0: both exporters crash on it;
    * a ``layout`` without ``showName`` gets ``showName: true`` (the exporters read a missing
      one as false and draw IDs only);
    * ``enabled: true`` is written where missing: its SVG exporter expands sub-techniques only
      under parents that say ``enabled: true``;
    * SVG only: an explicit colour wins over the score colour, as in the Navigator (its SVG
      exporter does the reverse), by leaving out the score of entries that have a colour;
    * SVG only: ``showSubtechniques`` on an entry without ``tactic`` is written again on one
      entry per tactic of the technique (from the bundle): its SVG exporter ignores it otherwise.
    """
    out = {k: v for k, v in json.loads(json.dumps(layer)).items() if k in _LAYER_KEYS}
    out.pop("links", None)
    given = out.get("versions")
    given = given if isinstance(given, dict) else {}
    versions = {k: str(v) for k, v in given.items() if k in ("attack", "navigator", "layer")}
    versions["layer"] = LAYER_VERSION
    if not versions.get("navigator", "").startswith("5."):
        versions["navigator"] = NAVIGATOR_VERSION
    out["versions"] = versions
    if isinstance(out.get("layout"), dict):
        # Its exporters read a missing showName as false and draw no names.
        out["layout"] = {"showName": True, "showID": False, **out["layout"]}
    if out.get("sorting") == 1:
        out["sorting"] = 0
        notes.append("sorting 1 (descending by name) is not supported; drawn ascending")
    if "description" in out and not out["description"]:
        out.pop("description")
    filters = out.get("filters")
    if isinstance(filters, dict):
        if filters.get("platforms"):
            out["filters"] = {"platforms": filters["platforms"]}
        else:
            out.pop("filters")
    out.pop("gradient", None)
    for item in out.get("legendItems") or []:
        if isinstance(item, dict) and isinstance(item.get("color"), str):
            item["color"] = _hex6(item["color"]) or "#ffffff"

    def clean_metadata(items: Any) -> Any:
        if not isinstance(items, list):
            return items
        return [
            {"name": m["name"], "value": _text(m["value"])}
            for m in items
            if isinstance(m, dict) and "name" in m and "value" in m
        ]

    if "metadata" in out:
        out["metadata"] = clean_metadata(out["metadata"])
    expand = (out.get("layout") or {}).get("expandedSubtechniques")
    techniques = []
    for t in out.get("techniques") or []:
        if not isinstance(t, dict):
            continue
        t = {k: v for k, v in t.items() if k in _TECHNIQUE_KEYS}
        if "metadata" in t:
            t["metadata"] = clean_metadata(t["metadata"])
        if t.get("score", 0) is None:
            del t["score"]
        t.setdefault("enabled", True)
        if "color" in t:
            color = _hex6(t["color"]) if isinstance(t["color"], str) else None
            if t["color"] and color is None:
                notes.append(f"{t.get('techniqueID')}: colour {t['color']!r} is not hex; left out")
            if color is None:
                del t["color"]
            else:
                t["color"] = color
        if svg and t.get("color") and "score" in t:
            del t["score"]
        techniques.append(t)
    if expand in ("annotated", "all"):
        # The Navigator shows annotated sub-techniques by itself; the exporters need the flag.
        if expand == "all" and not svg:
            notes.append("expandedSubtechniques 'all' is drawn as 'annotated' in Excel")
        _show_parents(techniques)
    if svg:
        keyed = {(t.get("techniqueID"), t.get("tactic")): t for t in techniques}
        for t in list(techniques):
            tid = t.get("techniqueID")
            if not isinstance(tid, str) or "tactic" in t or not t.get("showSubtechniques"):
                continue
            for tactic in bundle.tactics.get(tid, ()):
                own = keyed.get((tid, tactic))
                if own is None:
                    own = {"techniqueID": tid, "tactic": tactic, "enabled": t["enabled"]}
                    keyed[(tid, tactic)] = own
                    techniques.append(own)
                own["showSubtechniques"] = True
    if "techniques" in out:
        out["techniques"] = techniques
    return out


def _rgb(color: str) -> tuple[int, int, int] | None:
    """(r, g, b) of a hex colour; ``#rrggbbaa`` is laid over white, as the Navigator shows it."""
    if not isinstance(color, str) or not _HEX_COLOR.match(color):
        return None
    h = color[1:]
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    if len(h) == 8:
        a = int(h[6:8], 16) / 255
        r, g, b = (round(a * v + (1 - a) * 255) for v in (r, g, b))
    return r, g, b


def _hex6(color: str) -> str | None:
    rgb = _rgb(color)
    return None if rgb is None else "#{:02x}{:02x}{:02x}".format(*rgb)


def _mix(colors: Sequence[tuple[int, int, int]], lo: float, hi: float, score: float) -> str:
    """The Navigator's gradient colour: linear in RGB between evenly spaced colour stops."""
    if score <= lo or hi <= lo:
        r, g, b = colors[0]
    elif score >= hi:
        r, g, b = colors[-1]
    else:
        at = (score - lo) / (hi - lo) * (len(colors) - 1)
        i = min(int(at), len(colors) - 2)
        f = at - i
        r, g, b = (round(x + (y - x) * f) for x, y in zip(colors[i], colors[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@lru_cache(maxsize=1)
def _gradient_class() -> type:
    """A mitreattack ``Gradient`` that colours like the Navigator (defined once it is imported)."""
    from mitreattack.navlayers.core.gradient import Gradient as MitreGradient

    class NavigatorGradient(MitreGradient):  # type: ignore[misc]
        def __init__(self, colors: Sequence[str], lo: float, hi: float) -> None:
            # No super().__init__: the parent's curve is what goes wrong (HSL, int-only bounds).
            self._stops = [c for c in (_rgb(x) for x in colors) if c is not None]
            self._lo, self._hi = lo, hi

        @property
        def colors(self) -> list[str]:
            return ["#{:02x}{:02x}{:02x}".format(*c) for c in self._stops]

        @property
        def minValue(self) -> float:  # noqa: N802 - mitreattack's name
            return self._lo

        @property
        def maxValue(self) -> float:  # noqa: N802 - mitreattack's name
            return self._hi

        def compute_color(self, score: float) -> str:
            return _mix(self._stops, self._lo, self._hi, score)

        def get_dict(self) -> dict[str, Any]:
            return {"colors": self.colors, "minValue": self._lo, "maxValue": self._hi}

    return NavigatorGradient


def _navigator_gradient(layer: Mapping[str, Any], notes: list[str]) -> Any:
    """The layer's gradient as a mitreattack ``Gradient`` that mixes like the Navigator.

    Without a usable gradient the Navigator's default is used (red, yellow, green, 0 to 100).
    """
    g = layer.get("gradient")
    colors: list[str] = list(DEFAULT_GRADIENT)
    lo: float = 0
    hi: float = 100
    if isinstance(g, Mapping):
        given = g.get("colors")
        glo, ghi = g.get("minValue"), g.get("maxValue")
        ok = isinstance(given, list) and len(given) >= 2 and all(_rgb(c) for c in given)
        if ok and isinstance(glo, int | float) and isinstance(ghi, int | float) and ghi > glo:
            colors, lo, hi = list(given), glo, ghi  # type: ignore[arg-type]
        else:
            notes.append("the layer's gradient is not usable; drawn with the default gradient")
    return _gradient_class()(colors, lo, hi)


def _annotated(t: Mapping[str, Any]) -> bool:
    return bool(
        "score" in t
        or t.get("color")
        or t.get("comment")
        or t.get("metadata")
        or t.get("links")
        or t.get("enabled") is False
    )


def _show_parents(techniques: list[dict[str, Any]]) -> None:
    """Give the parent of every annotated sub-technique entry ``showSubtechniques: true``."""
    by_key = {(t.get("techniqueID"), t.get("tactic")): t for t in techniques}
    for t in list(techniques):
        tid = t.get("techniqueID")
        if not isinstance(tid, str) or "." not in tid or not _annotated(t):
            continue
        key = (tid.split(".")[0], t.get("tactic"))
        parent = by_key.get(key)
        if parent is None:
            parent = {"techniqueID": key[0], "enabled": True}
            if key[1] is not None:
                parent["tactic"] = key[1]
            by_key[key] = parent
            techniques.append(parent)
        parent["showSubtechniques"] = True


def _load_for_render(
    layer: Mapping[str, Any], bundle_path: str | Path, notes: list[str], *, svg: bool
) -> tuple[Any, _Bundle, Any]:
    mods = _mitreattack()
    layer_cls = mods[0]
    if isinstance(layer, ParsedLayer):
        layer = layer.raw
    parsed = read_layer(dict(layer))  # raises InvalidInput on a broken layer
    bundle = _load_bundle(bundle_path)
    if parsed.domain != bundle.domain:
        raise InvalidInput(
            f"layer: domain {parsed.domain} does not match the bundle's ({bundle.domain})"
        )
    data = _for_mitreattack(layer, notes, svg=svg, bundle=bundle)
    if not svg:
        # Excel sheet titles: at most 31 characters, none of []:*?/\ (openpyxl raises).
        data["name"] = (
            re.sub(r"[\[\]:*?/\\]", "-", str(data.get("name", ""))).strip()[:31] or "layer"
        )
        # ToExcel finds a technique's cells by its name, so a namesake in the same tactic
        # column (T1583.001 and T1584.001 are both "Domains"; any column for an entry without
        # a tactic) gets its colour too; and with showID it labels every cell with the ID of
        # the first technique of that name in the matrix.
        for t in data.get("techniques") or []:
            tid, tactic = t.get("techniqueID", ""), t.get("tactic")
            others = bundle.namesakes_in.get((tid, tactic)) if tactic else bundle.namesakes.get(tid)
            if others and _annotated(t):
                notes.append(
                    f"{tid} shares its name with {', '.join(others)}: the Excel exporter marks"
                    " the cells of both where both are shown"
                )
        if (data.get("layout") or {}).get("showID") and bundle.namesakes:
            notes.append(
                "with showID the Excel exporter looks IDs up by name: techniques sharing a name"
                f" ({len(bundle.namesakes)} in this bundle, e.g. Local Account) may show"
                " another's ID"
            )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        loaded = layer_cls(data)
    notes.extend(_captured(buffer))
    if not hasattr(loaded.layer, "get_dict"):
        said = f" ({notes[-1]})" if notes else ""
        raise InvalidInput(f"layer: mitreattack-python could not load it{said}")
    loaded.layer.gradient = _navigator_gradient(layer, notes)
    return mods, bundle, loaded


def _captured(buffer: io.StringIO) -> list[str]:
    return [line.strip() for line in buffer.getvalue().splitlines() if line.strip()]


def render_svg(
    layer: Mapping[str, Any],
    bundle_path: str | Path,
    out_path: str | Path,
    *,
    svg_options: Mapping[str, Any] | None = None,
) -> RenderReport:
    """Draw ``layer`` as an SVG matrix with mitreattack-python's ``ToSvg``.

    ``bundle_path`` is a local ATT&CK STIX bundle (2.0 or 2.1) of the layer's domain; it is read
    from disk, never fetched: its matrices, tactics and techniques are parsed once per file
    state and handed to the exporter as a stix2 MemoryStore (``source="memorystore"``), which
    draws the same matrix as ``source="local"`` in a fraction of the time (first render of
    Enterprise ~1.5 s, then ~0.2 s, against ~8-10 s every time with ``source="local"``).
    ``svg_options`` go to ``SVGConfig`` (width, height and unit, default 8.5 x 11 in;
    showSubtechniques "expanded"/"all"/"none"; fontSize; showLegend; ...).
    Techniques are drawn as ``<rect class="T1059.001">`` followed by a ``<text>`` whose
    ``<tspan>`` pieces, joined by spaces, give the displayed name (non-ASCII letters as
    letters: see :func:`_unescape_svg_names`). See :func:`_for_mitreattack` for how the layer
    is adjusted first. Raises :class:`RenderingUnavailable` without
    mitreattack-python and :class:`InvalidInput` for a bad layer or a bundle of another domain.
    """
    notes: list[str] = []
    start = time.perf_counter()
    out = Path(out_path)
    with _RENDER_LOCK:
        (_, to_svg_cls, _, config_cls), bundle, loaded = _load_for_render(
            layer, bundle_path, notes, svg=True
        )
        options = dict(svg_options or {})
        if not (loaded.layer.filters and loaded.layer.filters.platforms):
            # Without a platform filter its header would claim "Windows, Linux, macOS".
            options.setdefault("showFilters", False)
        expand = loaded.layer.layout.expandedSubtechniques if loaded.layer.layout else None
        if expand == "all":
            options.setdefault("showSubtechniques", "all")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            try:
                config = config_cls(**options)
            except TypeError as exc:
                raise InvalidInput(f"svg_options: {exc}") from None
            exporter = to_svg_cls(
                domain=bundle.domain, source="memorystore", resource=bundle.store, config=config
            )
            exporter.to_svg(loaded, filepath=str(out))
        _unescape_svg_names(out)
    return RenderReport(out, time.perf_counter() - start, notes + _captured(buffer))


_ESCAPED_UTF8 = re.compile(r"(?:\\x[0-9a-f]{2})+")
_SVG_TEXT = re.compile(r">([^<]*\\x[0-9a-f]{2}[^<]*)<")


def _unescape_svg_names(path: Path) -> None:
    """Technique names with non-ASCII letters back as letters in an SVG from mitreattack-python.

    Its SVG exporter writes each cell's text as ``text.encode("utf-8").decode("ascii",
    "backslashreplace")``, so "Process Doppelgänging" (T1055.013) is drawn as
    "Process Doppelg\\xc3\\xa4nging". The escapes are UTF-8 bytes: decode them again.
    """
    text = path.read_text(encoding="utf-8")
    if "\\x" not in text:
        return

    def letters(m: re.Match[str]) -> str:
        raw = bytes.fromhex(m.group(0).replace("\\x", ""))
        return raw.decode("utf-8", errors="backslashreplace")

    fixed = _SVG_TEXT.sub(lambda m: ">" + _ESCAPED_UTF8.sub(letters, m.group(1)) + "<", text)
    if fixed != text:
        path.write_text(fixed, encoding="utf-8")


_END_COLUMN = "\x00ttpgraph end of matrix"


def _with_last_column(construct: Any) -> Any:
    """mitreattack-python's Excel layout writes a column's expanded sub-techniques when it
    reaches the next column, so those of the last tactic (Impact) are never written and their
    entries are reported "malformed". Give it an empty column after the last, then drop it."""
    from mitreattack.navlayers.exporters.matrix_gen import MatrixEntry, Tactic

    def fixed(codex: Any, subtechs: Any, excludes: Any) -> Any:
        end = Tactic(tactic=MatrixEntry(id="", name=_END_COLUMN), techniques=[], subtechniques={})
        template, joins = construct([*codex, end], subtechs, excludes)
        return {k: v for k, v in template.items() if v != _END_COLUMN}, joins

    return fixed


def render_xlsx(
    layer: Mapping[str, Any], bundle_path: str | Path, out_path: str | Path
) -> RenderReport:
    """Write ``layer`` as an Excel matrix with mitreattack-python's ``ToExcel``.

    One column per tactic (with a column beside it for shown sub-techniques); cell text is the
    technique name, or "T1059.001: PowerShell" when the layout has ``showID``; fills follow the
    colour or score, comments become cell comments. The sheet title is the layer name cut to
    Excel's rules (31 characters, none of ``[]:*?/\\``). Same bundle rules and errors as
    :func:`render_svg`. The expanded sub-techniques of the last tactic are written too (its
    exporter drops them, see :func:`_with_last_column`).
    """
    notes: list[str] = []
    start = time.perf_counter()
    out = Path(out_path)
    with _RENDER_LOCK:
        (_, _, to_excel_cls, _), bundle, loaded = _load_for_render(
            layer, bundle_path, notes, svg=False
        )
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exporter = to_excel_cls(
                domain=bundle.domain, source="memorystore", resource=bundle.store
            )
            handle = exporter.raw_handle.h
            handle._construct_panop = _with_last_column(handle._construct_panop)
            exporter.to_xlsx(loaded, filepath=str(out))
    return RenderReport(out, time.perf_counter() - start, notes + _captured(buffer))
