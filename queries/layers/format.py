"""The ATT&CK Navigator layer format (4.5, https://github.com/mitre-attack/attack-navigator, file
``layers/spec/v4.5/layerformat.md``): its versions, domains, keys and allowed values, the types
layers are built from and read into, and the small helpers every part of the package shares.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ATTACK_URL",
    "DEFAULT_GRADIENT",
    "DIVIDER",
    "DOMAINS",
    "LAYER_VERSION",
    "NAVIGATOR_VERSION",
    "Gradient",
    "LayerTechnique",
    "LegendItem",
    "ParsedLayer",
    "ParsedTechnique",
    "technique_url",
]


DOMAINS: Final = ("enterprise-attack", "mobile-attack", "ics-attack")
LAYER_VERSION: Final = "4.5"
# The Navigator warns about layers whose navigator version is older than 4.9.0; mitreattack-python
# replaces anything that does not start with "5." by "5.0.0" (with a printed warning).
NAVIGATOR_VERSION: Final = "5.1.0"
MIN_NAVIGATOR_VERSION: Final = (4, 9, 0)
ATTACK_URL: Final = "https://attack.mitre.org"

# The Navigator's default gradient (red, yellow, green) reads "low is bad": used for coverage and
# telemetry. Heat and gap layers use white to red ("more is hotter": see queries.layers.answers).
DEFAULT_GRADIENT: Final = ("#ff6666", "#ffe766", "#8ec843")


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

TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
TACTIC = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
HEX_COLOR = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")

# Keys of the 4.5 format, for the unknown-key check.
LAYER_KEYS = frozenset(
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
TECHNIQUE_KEYS = frozenset(
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
LAYOUT_VALUES: dict[str, tuple[Any, ...] | type] = {
    "layout": ("side", "flat", "mini"),
    "showID": bool,
    "showName": bool,
    "showAggregateScores": bool,
    "countUnscored": bool,
    "aggregateFunction": ("average", "min", "max", "sum"),
    "expandedSubtechniques": ("none", "all", "annotated"),
}


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
            "minValue": number(self.min_value),
            "maxValue": number(self.max_value),
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


def number(value: float | int) -> float | int:
    """Whole floats become ints (3.0 -> 3), so layers read back as they were written."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
