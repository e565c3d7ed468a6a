"""Layers people made as input: read as a set of techniques, like an actor
(:func:`import_layer_as_actor_set`), or combined by a score expression against the loaded
release (:func:`combine_layers_for`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from ..actors import group_technique_sets, jaccard
from ..errors import InvalidInput
from ..graph import Graph
from .check import validate_layer
from .combine import combine_layers
from .export import (
    LayerExport,
    LayerKind,
    LeftOut,
    Tech,
    export_filename,
    layer_domain_release,
    make_export,
    norm_domain,
    platform_filter,
    technique_index,
    why_not,
)
from .format import ParsedLayer, ParsedTechnique
from .read import read_layer

__all__ = [
    "ActorSetTechnique",
    "LayerActorSet",
    "SimilarToLayer",
    "combine_layers_for",
    "import_layer_as_actor_set",
]


class ActorSetTechnique(BaseModel):
    technique_id: str
    name: str
    tactics: list[str]
    score: float | None = None
    from_id: str | None = Field(None, description="the revoked id the layer used, if remapped")


class SimilarToLayer(BaseModel):
    group_id: str
    name: str
    jaccard: float
    shared: int
    technique_count: int


class LayerActorSet(BaseModel):
    """A layer a person made, read as a set of techniques (an actor-like set)."""

    name: str
    domain: str
    layer_attack_version: str | None = Field(description="the release the layer says it is for")
    attack_version: str | None = Field(description="the loaded release it was checked against")
    technique_ids: list[str]
    techniques: list[ActorSetTechnique]
    entries_read: int
    entries_counted: int = Field(description="entries that count (enabled, scored > threshold)")
    rule: str = Field(description="which entries counted")
    remapped: dict[str, str] = Field(description="revoked id -> its replacement")
    left_out: list[LeftOut]
    warnings: list[str] = Field(
        description="what reading noticed: lenient reading, a layer of another ATT&CK version, "
        "revoked ids read as their replacement"
    )
    similar: list[SimilarToLayer] = Field(description="known groups most like this set")


# ---------------------------------------------------------------- layers as input


def _counting_rule(parsed: ParsedLayer, min_score: float | None) -> tuple[Callable[..., bool], str]:
    """Which entries of a person's layer count as "in the set"."""
    entries = parsed.techniques
    if min_score is not None:
        return (
            lambda t: t.enabled and t.score is not None and t.score >= min_score,
            f"enabled entries scored >= {min_score:g}",
        )
    if any(t.score is not None for t in entries):
        return (lambda t: t.enabled and t.score is not None and t.score > 0), (
            "enabled entries scored > 0"
        )
    if any(t.color or t.comment for t in entries):
        return (lambda t: t.enabled and bool(t.color or t.comment)), (
            "enabled entries with a colour or comment (the layer has no scores)"
        )
    return (lambda t: t.enabled), "every enabled entry (the layer has no scores or colours)"


def import_layer_as_actor_set(
    graph: Graph,
    *,
    layer: Any,
    domain: str | None = None,
    min_score: float | None = None,
    similar: int = 10,
    include_software: bool = False,
) -> LayerActorSet:
    """Read a layer a person made (format 4.0 to 4.5) as a set of techniques, like an actor.

    Which entries count: with ``min_score``, enabled entries scored at least that; otherwise,
    if the layer has scores, enabled entries scored above 0; if not, enabled entries with a
    colour or a comment; if none has either, every enabled entry (the same rule as the
    inventory importer's ``layer`` format, with that last fallback). Revoked ids are read as
    their replacement (listed in ``remapped``); deprecated, unknown and other-domain ids are
    left out with the reason. ``similar`` (> 0) ranks known groups by Jaccard similarity with
    the set (direct and campaign techniques; ``include_software`` adds their software's).
    """
    parsed = layer if isinstance(layer, ParsedLayer) else read_layer(layer)
    dom = norm_domain(domain)
    if dom is not None and parsed.domain != dom:
        raise InvalidInput(f"layer {parsed.name!r}: its domain is {parsed.domain}, not {dom}")
    dom = parsed.domain
    counts, rule = _counting_rule(parsed, min_score)
    counted = [t for t in parsed.techniques if counts(t)]
    scores: dict[str, float | None] = {}
    for t in counted:
        prev = scores.get(t.technique_id)
        if t.technique_id not in scores or (
            t.score is not None and (prev is None or t.score > prev)
        ):
            scores[t.technique_id] = t.score
    index = technique_index(graph, scores)
    replacements = [t.replaced_by for t in index.values() if t.revoked and t.replaced_by]
    index.update(technique_index(graph, [r for r in replacements if r not in index]))
    release = layer_domain_release(graph, dom)
    kept: dict[str, ActorSetTechnique] = {}
    remapped: dict[str, str] = {}
    left_out: list[LeftOut] = []
    for tid, score in scores.items():
        tech = index.get(tid)
        use = tid
        if tech is not None and tech.revoked and tech.replaced_by:
            new = index.get(tech.replaced_by)
            if new is not None and why_not(new, new.technique_id, dom) is None:
                remapped[tid] = use = new.technique_id
        reason = why_not(index.get(use), use, dom)
        if reason is not None:
            left_out.append(LeftOut(technique_id=tid, reason=reason))
            continue
        found = index[use]
        if use in kept and (score is None or (kept[use].score or 0) >= score):
            continue
        kept[use] = ActorSetTechnique(
            technique_id=use,
            name=found.name,
            tactics=list(found.tactics),
            score=score,
            from_id=tid if use != tid else None,
        )
    ids = sorted(kept)
    warnings = list(parsed.warnings)
    loaded = release.get("version")
    if (
        parsed.attack_version
        and loaded
        and parsed.attack_version.split(".")[0] != str(loaded).split(".")[0]
    ):
        warnings.append(
            f"the layer is for ATT&CK {parsed.attack_version}; the graph holds {dom} {loaded}: "
            "its ids are read as this release reads them"
        )
    if remapped:
        warnings.append(
            f"{len(remapped)} id(s) revoked in {dom} {loaded or ''}".rstrip()
            + " read as their replacement: "
            + ", ".join(f"{a} -> {b}" for a, b in sorted(remapped.items()))
        )
    ranked: list[SimilarToLayer] = []
    if similar > 0 and ids:
        mine = set(ids)
        for gid, (name, techs) in group_technique_sets(
            graph, [], include_software=include_software, domain=dom
        ).items():
            shared = mine & set(techs)
            if shared:
                ranked.append(
                    SimilarToLayer(
                        group_id=gid,
                        name=name,
                        jaccard=round(jaccard(mine, set(techs)), 4),
                        shared=len(shared),
                        technique_count=len(techs),
                    )
                )
        ranked.sort(key=lambda s: (-s.jaccard, -s.shared, s.group_id))
    return LayerActorSet(
        name=parsed.name,
        domain=dom,
        layer_attack_version=parsed.attack_version,
        attack_version=release.get("version"),
        technique_ids=ids,
        techniques=[kept[i] for i in ids],
        entries_read=len(parsed.techniques),
        entries_counted=len(counted),
        rule=rule,
        remapped=dict(sorted(remapped.items())),
        left_out=left_out,
        warnings=warnings,
        similar=ranked[:similar],
    )


def _per_tactic(
    techniques: Sequence[ParsedTechnique], index: Mapping[str, Tech]
) -> list[ParsedTechnique]:
    """Entries without a tactic written out once per tactic of the technique (where the layer
    has no entry of its own there), as the Navigator reads them: results stay per tactic."""
    own = {(t.technique_id, t.tactic) for t in techniques if t.tactic is not None}
    out: list[ParsedTechnique] = []
    for t in techniques:
        tech = index.get(t.technique_id)
        if t.tactic is not None or tech is None or not tech.tactics:
            out.append(t)
            continue
        out += [
            dataclasses.replace(t, tactic=tactic)
            for tactic in tech.tactics
            if (t.technique_id, tactic) not in own
        ]
    return out


_FROM_OPTIONS = (
    "comments_from",
    "colors_from",
    "enabled_from",
    "links_from",
    "metadata_from",
    "filters_from",
    "legend_from",
    "gradient_from",
)


def combine_layers_for(
    graph: Graph,
    *,
    layers: Mapping[str, Any],
    expression: str,
    name: str | None = None,
    description: str | None = None,
    keep_zero: bool = True,
    **from_options: str | None,
) -> LayerExport:
    """The Navigator's "create layer from other layers", server-side, against the loaded release.

    ``layers`` binds lower-case variables (``a``, ``b``...) to layers (dicts, JSON text or bytes,
    paths); ``expression`` uses them with numbers, ``+ - * /``, ``min()``, ``max()`` and
    parentheses (see :func:`queries.layers.combine_layers` for the rules: missing or unscored
    counts as 0, division by zero leaves the technique out...). ``from_options`` are the
    ``*_from`` options of that function (``comments_from="a"``...). Before combining, entries
    for techniques the loaded release does not hold, and entries in a tactic the technique does
    not have, are left out (and listed); ``versions.attack`` is the loaded release.
    """
    if not layers:
        raise InvalidInput("combine: no layers given")
    unknown = set(from_options) - set(_FROM_OPTIONS)
    if unknown:
        raise InvalidInput(f"combine: unknown option {sorted(unknown)[0]!r}")
    parsed: dict[str, ParsedLayer] = {}
    for var, data in layers.items():
        try:
            parsed[var] = data if isinstance(data, ParsedLayer) else read_layer(data)
        except InvalidInput as exc:
            raise InvalidInput(f"{var}: {exc.detail}") from None
    domains = {p.domain for p in parsed.values()}
    if len(domains) > 1:
        found = ", ".join(f"{v} = {p.domain}" for v, p in parsed.items())
        raise InvalidInput(f"combine: the layers are from different domains ({found})")
    dom = domains.pop()
    release = layer_domain_release(graph, dom)
    index = technique_index(graph, [t.technique_id for p in parsed.values() for t in p.techniques])
    left_out: list[LeftOut] = []
    notes: list[str] = []
    cleaned: dict[str, ParsedLayer] = {}
    for var, p in parsed.items():
        keep = []
        for t in _per_tactic(p.techniques, index):
            reason = why_not(index.get(t.technique_id), t.technique_id, dom)
            if (
                reason is None
                and t.tactic is not None
                and t.tactic not in index[t.technique_id].tactics
            ):
                reason = f"not in tactic {t.tactic}"
            if reason is None:
                keep.append(t)
            else:
                left_out.append(LeftOut(technique_id=t.technique_id, reason=f"{var}: {reason}"))
        cleaned[var] = dataclasses.replace(p, techniques=keep)
        made_for = p.attack_version
        if made_for and made_for != release.get("version"):
            notes.append(
                f"{var} ({p.name}) was made for ATT&CK {made_for}; read against "
                f"{release.get('version')}"
            )
    layer = combine_layers(
        cleaned,
        expression,
        name=name or f"{expression.strip()}"[:100],
        description=description,
        attack_version=release.get("version"),
        keep_zero=keep_zero,
        **{k: v for k, v in from_options.items() if v is not None},  # type: ignore[arg-type]
    )
    scored = {e["techniqueID"] for e in layer["techniques"] if "score" in e}
    kept = [index[t] for t in sorted(scored) if t in index]
    if from_options.get("filters_from") is None:
        # The platforms of the techniques in the result, as for every other layer.
        plats = platform_filter(kept, None)
        if plats:
            layer = {**layer, "filters": {"platforms": plats}}
            order = list(layer)  # keep the format's key order: filters after description
            order.remove("filters")
            order.insert(order.index("domain") + (2 if "description" in layer else 1), "filters")
            layer = {k: layer[k] for k in order}
            validate_layer(layer)
    return make_export(
        LayerKind.combine,
        layer,
        filename=export_filename(LayerKind.combine, [layer["name"]], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )
