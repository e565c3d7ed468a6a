"""ATT&CK Navigator layers: build, validate, read, combine and render them; every answer of the
graph as a layer, and layers as input.

The pure modules are functions over plain data: no database, no web or CLI imports. Services
compute the technique entries from the graph and hand them here; every answer can then be saved
as a Navigator layer (format 4.5, https://github.com/mitre-attack/attack-navigator, file
``layers/spec/v4.5/layerformat.md``). Their public names are re-exported here
(``from queries.layers import build_layer``):

:mod:`queries.layers.format`
    The format's versions, domains and keys, and the types layers are built from
    (:class:`LayerTechnique`, :class:`Gradient`, :class:`LegendItem`) and read into
    (:class:`ParsedLayer`, :class:`ParsedTechnique`).
:mod:`queries.layers.build`
    :func:`build_layer` turns :class:`LayerTechnique` entries (or plain dicts with the same keys)
    into a layer dict. A technique in several tactics gets one entry per tactic; the parent of
    every sub-technique entry gets ``showSubtechniques: true`` in the same tactic (an entry is
    added for a parent that is not in the list) so sub-techniques show under their parents.
:mod:`queries.layers.answers`
    :func:`profile_layer`, :func:`heat_layer`, :func:`coverage_layer`, :func:`gaps_layer` and
    :func:`telemetry_layer` are thin helpers for the analyses, taking lists of dicts.
:mod:`queries.layers.check` and :mod:`queries.layers.read`
    :func:`validate_layer` checks a layer against the 4.5 rules (plus a few stricter ones that the
    Navigator and mitreattack-python need, listed there) and raises :class:`InvalidInput`.
    :func:`read_layer` reads any 4.x layer a person made (4.0 to 4.5) into a :class:`ParsedLayer`;
    it is lenient about what does not change the meaning (unknown keys, missing versions, old
    versions) and records it in ``ParsedLayer.warnings``, and raises :class:`InvalidInput` with a
    one-line message naming the place (``layer techniques[3]: techniqueID missing``) for anything
    else.
:mod:`queries.layers.combine`
    :func:`combine_layers` is the Navigator's "create layer from other layers" score expression,
    evaluated safely with :mod:`ast` (numbers, layer variables, ``+ - * /``, unary minus,
    ``min()``, ``max()``, parentheses; nothing else).
:mod:`queries.layers.render`
    :func:`render_svg` and :func:`render_xlsx` wrap mitreattack-python's ``ToSvg`` and
    ``ToExcel`` (imported lazily; :class:`RenderingUnavailable` when it is not installed) and feed
    them a local STIX bundle, never the network. See :func:`render_svg` for the work-arounds.

The services read the graph and are imported from their own modules (this package does not
import them, so the pure modules come without the driver or the models):

:mod:`queries.layers.export`
    What every service shares: the :class:`~queries.layers.export.LayerExport` it returns (the
    layer plus a file name, counts, what was left out and why) and the facts the graph holds
    about the answer's techniques, checked against the loaded release.
:mod:`queries.layers.actor_layers`
    One actor's profile, and N actors (or layers people made) compared as a heat layer.
:mod:`queries.layers.input_layers`
    Layers people made as input: read as an actor-like set of techniques, or combined.
:mod:`queries.layers.detection_layers`
    Coverage of an inventory, its gaps against actors, telemetry, and the collection plan.
:mod:`queries.layers.render_service`
    Any layer drawn as SVG or Excel on the matrix the graph holds.
"""

from __future__ import annotations

from .answers import (
    COMMON_COLOR,
    GAP_GRADIENT,
    HEAT_GRADIENT,
    PATH_COLORS,
    PATH_LABELS,
    PATH_SCORES,
    coverage_layer,
    gaps_layer,
    heat_layer,
    profile_layer,
    telemetry_layer,
)
from .build import build_layer, dump_layer, gradient_for_scores
from .check import layer_problems, validate_layer
from .combine import combine_layers
from .format import (
    ATTACK_URL,
    DEFAULT_GRADIENT,
    DIVIDER,
    DOMAINS,
    LAYER_VERSION,
    MIN_NAVIGATOR_VERSION,
    NAVIGATOR_VERSION,
    Gradient,
    LayerTechnique,
    LegendItem,
    LinkItem,
    MetadataItem,
    ParsedLayer,
    ParsedTechnique,
    technique_url,
)
from .read import read_layer, read_layers
from .render import RENDER_HINT, RenderingUnavailable, RenderReport, render_svg, render_xlsx

__all__ = [
    "ATTACK_URL",
    "COMMON_COLOR",
    "DEFAULT_GRADIENT",
    "DIVIDER",
    "DOMAINS",
    "GAP_GRADIENT",
    "HEAT_GRADIENT",
    "LAYER_VERSION",
    "MIN_NAVIGATOR_VERSION",
    "NAVIGATOR_VERSION",
    "PATH_COLORS",
    "PATH_LABELS",
    "PATH_SCORES",
    "RENDER_HINT",
    "Gradient",
    "LayerTechnique",
    "LegendItem",
    "LinkItem",
    "MetadataItem",
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
