"""Navigator layers computed from the graph: every answer as a layer, and layers as input.

The services here ask the graph (and the actor and coverage services) for the answer, check
every technique against the loaded release, and hand plain entries to the builders of
:mod:`queries.layers`, which know the layer format. What the graph decides, never a constant:

* ``versions.attack`` is the version of the loaded ``(:Release)`` of the layer's domain;
* the domain is the one the answer's techniques belong to (the one holding most of them when
  the caller does not say), one layer per domain as the Navigator wants;
* each technique gets one entry per tactic it has in that domain's matrix, in matrix order
  (``(:Matrix)-[:HAS_TACTIC {order}]->(:Tactic)``), and sub-techniques show under their parents;
* the platform filter is the platforms of the techniques in the layer (or the caller's);
* techniques the loaded release no longer holds (revoked, deprecated, removed, unknown, or of
  another domain) are never written: they are listed in :attr:`LayerExport.left_out` with the
  reason (a revoked id names its replacement).

Each service returns a :class:`LayerExport`: the layer dict plus what a front door needs (a
file name, counts, what was left out and why). :func:`render_layer` draws any layer as SVG or
Excel with mitreattack-python, from a matrix bundle written from the graph itself, so it works
whatever the data came from (file, URL or TAXII).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from . import coverage as C
from . import layers as L
from .actors import (
    DOMAINS,
    MAX_ACTORS,
    PathKind,
    compare_groups,
    group_technique_sets,
    jaccard,
    profile_group,
)
from .cache import cached_answer
from .catalog import Q
from .errors import InvalidInput, NotFound
from .graph import Graph
from .resolve import resolve_group, resolve_groups
from .settings import cache_dir

__all__ = [
    "ActorSetTechnique",
    "LayerActorSet",
    "LayerExport",
    "LayerKind",
    "LeftOut",
    "SimilarToLayer",
    "TelemetryLevel",
    "combine_layers_for",
    "compare_layer_for",
    "coverage_layer_for",
    "gaps_layer_for",
    "import_layer_as_actor_set",
    "layer_domain_release",
    "matrix_bundle",
    "profile_layer_for",
    "render_layer",
    "telemetry_layer_for",
    "telemetry_plan_layer_for",
]

# How a technique's kill chain phase is named in each domain's STIX (for the matrix bundle).
_KILL_CHAIN = {
    "enterprise-attack": "mitre-attack",
    "mobile-attack": "mitre-mobile-attack",
    "ics-attack": "mitre-ics-attack",
}
_CITATION = re.compile(r"\s*\(Citation:[^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\((?:https?://[^)\s]*)\)")
_URL = re.compile(r"^https?://\S+$")
_MAX_LINKS = 12  # citation links per technique in a profile layer
_MAX_TECHNIQUES = 5000


PARTIAL_COLOR = "#9ecae1"
PARTIAL_LABEL = "partial: rules on its parent or sub-techniques only"


class LayerKind(StrEnum):
    profile = "profile"
    compare = "compare"
    coverage = "coverage"
    gaps = "gaps"
    telemetry = "telemetry"
    combine = "combine"


class TelemetryLevel(StrEnum):
    data_component = "data_component"
    log_source = "log_source"


# ---------------------------------------------------------------- models


class LeftOut(BaseModel):
    technique_id: str
    reason: str = Field(description="why the layer has no entry for it")


class LayerExport(BaseModel):
    """A Navigator layer (format 4.5) and what a front door needs to hand it over.

    Exports are cached per graph version and shared between callers: treat them as read-only
    (copy the layer before changing it)."""

    kind: LayerKind
    name: str
    filename: str = Field(description="a sensible file name for the download (.json)")
    domain: str
    attack_version: str | None = Field(description="the loaded release, as in versions.attack")
    techniques: int = Field(description="techniques given an entry (added parents not counted)")
    entries: int = Field(description="entries in the layer: one per technique and tactic")
    platforms: list[str] = Field(description="the layer's platform filter")
    left_out: list[LeftOut] = Field(description="techniques of the answer not written, and why")
    notes: list[str] = []
    layer: dict[str, Any] = Field(description="the layer itself (ATT&CK Navigator format 4.5)")


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


# ---------------------------------------------------------------- technique facts


@dataclass(frozen=True)
class _Tech:
    technique_id: str
    name: str
    domains: tuple[str, ...]
    platforms: tuple[str, ...]
    tactics: tuple[str, ...]
    parent_id: str | None
    revoked: bool
    deprecated: bool
    in_release: bool
    replaced_by: str | None
    url: str | None

    @property
    def current(self) -> bool:
        return not self.revoked and not self.deprecated and self.in_release


def _technique_index(graph: Graph, ids: Iterable[str]) -> dict[str, _Tech]:
    """What the graph knows of ``ids`` (ids it does not know are absent). With the answer cache
    on, every technique is read once per graph version and looked up from there."""
    wanted = sorted({i for i in ids if isinstance(i, str)})
    if not wanted:
        return {}
    if graph.cache.enabled:
        every = graph.cached("layer_techniques", {}, lambda: _read_techniques(graph, []))
        return {i: every[i] for i in wanted if i in every}
    return _read_techniques(graph, wanted)


def _read_techniques(graph: Graph, wanted: list[str]) -> dict[str, _Tech]:
    rows = graph.read(Q.layer_techniques, technique_ids=wanted, limit=100_000)
    out: dict[str, _Tech] = {}
    for r in rows:
        tech = _Tech(
            technique_id=r["technique_id"],
            name=r["name"] or r["technique_id"],
            domains=tuple(r["domains"] or ()),
            platforms=tuple(r["platforms"] or ()),
            tactics=tuple(r["tactics"] or ()),
            parent_id=r["parent_id"],
            revoked=bool(r["revoked"]),
            deprecated=bool(r["deprecated"]),
            in_release=bool(r["in_release"]),
            replaced_by=r["replaced_by"],
            url=r["url"],
        )
        seen = out.get(tech.technique_id)
        if seen is None or (tech.current and not seen.current):  # a current node wins
            out[tech.technique_id] = tech
    return out


def _why_not(tech: _Tech | None, technique_id: str, domain: str) -> str | None:
    """Why ``technique_id`` cannot be written to a ``domain`` layer (None when it can)."""
    if tech is None:
        return "unknown to the loaded ATT&CK release"
    if tech.revoked:
        to = f", replaced by {tech.replaced_by}" if tech.replaced_by else ""
        return f"revoked{to}"
    if tech.deprecated:
        return "deprecated"
    if not tech.in_release:
        return "no longer in the loaded release"
    if domain not in tech.domains:
        return f"a {'/'.join(tech.domains) or 'other'} technique, not {domain}"
    if not tech.tactics:
        return f"has no tactic in the {domain} matrix"
    return None


def _partition(
    ids: Iterable[str], index: Mapping[str, _Tech], domain: str
) -> tuple[list[_Tech], list[LeftOut]]:
    kept: list[_Tech] = []
    left: list[LeftOut] = []
    for tid in dict.fromkeys(ids):
        reason = _why_not(index.get(tid), tid, domain)
        if reason is None:
            kept.append(index[tid])
        else:
            left.append(LeftOut(technique_id=tid, reason=reason))
    return kept, left


def _norm_domain(domain: str | None) -> str | None:
    if domain is None or not str(domain).strip():
        return None
    d = str(domain).strip().lower()
    d = d if d.endswith("-attack") else f"{d}-attack"
    if d not in DOMAINS:
        raise InvalidInput(f"domain {domain!r}: use enterprise, mobile or ics")
    return d


def _releases(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r["domain"]: r for r in graph.read(Q.releases, limit=100)}


def layer_domain_release(graph: Graph, domain: str) -> dict[str, Any]:
    """The loaded ``(:Release)`` of ``domain`` (version, sha256, loaded_at...), or NotFound."""
    d = _norm_domain(domain) or "enterprise-attack"
    found = _releases(graph).get(d)
    if found is None:
        raise NotFound(
            f"no ATT&CK release of {d} is loaded (ttpgraph load --domain {d.split('-')[0]})"
        )
    return found


def _choose_domain(
    graph: Graph, index: Mapping[str, _Tech], ids: Iterable[str], domain: str | None
) -> str:
    """The caller's domain, else the one holding most of the current techniques."""
    chosen = _norm_domain(domain)
    if chosen is not None:
        return chosen
    counts: Counter[str] = Counter()
    for tid in set(ids):
        tech = index.get(tid)
        if tech is not None and tech.current:
            counts.update(d for d in tech.domains if d in DOMAINS)
    if counts:
        best = max(counts.values())
        return next(d for d in DOMAINS if counts.get(d) == best)
    loaded = _releases(graph)
    return next((d for d in DOMAINS if d in loaded), "enterprise-attack")


def _platforms(kept: Sequence[_Tech], given: Sequence[str] | None) -> list[str]:
    """The platform filter: the caller's, else every platform of the layer's techniques. None
    when one of them names no platform (ICS T0895): a filter would hide it."""
    if given:
        # As the data spells them ("windows" -> "Windows"): the Navigator's filter is exact.
        known = {p.casefold(): p for t in kept for p in t.platforms}
        return list(dict.fromkeys(known.get(p.casefold(), p) for p in given if p))
    if any(not t.platforms for t in kept):
        return []
    seen = {p for t in kept for p in t.platforms if p}
    return sorted(seen, key=str.casefold)


def _slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (s[:limit].rstrip("-.") or "layer").lower()


def _filename(kind: LayerKind, parts: Sequence[str], domain: str) -> str:
    shown = list(parts[:5])
    if len(parts) > 5:
        shown.append(f"and-{len(parts) - 5}-more")
    stem = "-".join([kind.value, *(p for p in shown if p)])
    if domain != "enterprise-attack":
        stem += "-" + domain.split("-")[0]
    return _slug(stem, 120) + ".json"


def _export(
    kind: LayerKind,
    layer: dict[str, Any],
    *,
    filename: str,
    kept: Sequence[_Tech],
    left_out: Sequence[LeftOut],
    notes: Sequence[str] = (),
) -> LayerExport:
    versions = layer.get("versions") or {}
    return LayerExport(
        kind=kind,
        name=layer["name"],
        filename=filename,
        domain=layer["domain"],
        attack_version=versions.get("attack"),
        techniques=len({t.technique_id for t in kept}),
        entries=len(layer.get("techniques") or []),
        platforms=list((layer.get("filters") or {}).get("platforms") or []),
        left_out=list(left_out),
        notes=list(notes),
        layer=layer,
    )


def _common_options(
    graph: Graph, domain: str, kept: Sequence[_Tech], platforms: Sequence[str] | None
) -> dict[str, Any]:
    release = layer_domain_release(graph, domain)
    return {
        "attack_version": release.get("version"),
        "domain": domain,
        "platforms": _platforms(kept, platforms),
    }


def _meta_release(release_version: str | None, domain: str) -> tuple[str, str]:
    return ("ATT&CK", f"{domain} {release_version or '(version unknown)'}")


def _clean(text: str | None) -> str:
    """ATT&CK prose as plain text for comments: no ``(Citation: ...)`` markers, and Markdown
    links ``[Mimikatz](https://...)`` reduced to their text (the Navigator shows comments raw)."""
    return _MD_LINK.sub(r"\1", _CITATION.sub("", text or "")).strip()


# ---------------------------------------------------------------- profile


@cached_answer
def profile_layer_for(
    graph: Graph,
    *,
    group: str,
    kinds: Sequence[PathKind | str] | None = None,
    platforms: Sequence[str] | None = None,
    domain: str | None = None,
    tactic: str | None = None,
    citations: bool = True,
) -> LayerExport:
    """One actor's techniques as a layer: score 3 direct, 2 via software, 1 via campaign.

    The tie (direct / via software / via campaign) is told apart by score, colour (with a
    legend of the ties present) and ``via`` metadata; the comment holds ATT&CK's procedure
    text for each tie; links go to the technique's page, the software and campaign pages and
    (with ``citations``) the cited reports. Filters as in
    :func:`queries.actors.profile_group`.
    """
    try:
        kind_list = [PathKind(k) for k in kinds] if kinds else None
    except ValueError:
        raise InvalidInput(
            f"kinds {list(kinds or [])}: use {', '.join(k.value for k in PathKind)}"
        ) from None
    dom = _norm_domain(domain)
    profile = profile_group(
        graph,
        group=group,
        kinds=kind_list,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        tactic=tactic,
        limit=_MAX_TECHNIQUES,
    )
    ids = [t.technique_id for t in profile.techniques]
    index = _technique_index(graph, ids)
    dom = _choose_domain(graph, index, ids, dom)
    kept, left_out = _partition(ids, index, dom)
    keep = {t.technique_id for t in kept}
    uses: list[dict[str, Any]] = []
    present: set[str] = set()
    for t in profile.techniques:
        if t.technique_id not in keep:
            continue
        tactics = list(index[t.technique_id].tactics)
        cited: list[tuple[str, str]] = []
        for e in t.evidence:
            present.add(e.kind.value)
            for label, url in zip(e.citations, e.citation_urls, strict=False):
                if url and _URL.match(url) and (label, url) not in cited:
                    cited.append((label or url, url))
            uses.append(
                {
                    "technique_id": t.technique_id,
                    "tactics": tactics,
                    "via": e.kind.value,
                    "source": e.via_name,
                    "source_id": e.via_id,
                    "procedure": _clean(e.procedure),
                }
            )
        if citations and cited:
            uses[-1]["links"] = [L.DIVIDER, *cited[:_MAX_LINKS]]
    options = _common_options(graph, dom, kept, platforms)
    who = f"{profile.name} ({profile.group_id})"
    legend = [(L.PATH_LABELS[k], L.PATH_COLORS[k]) for k in L.PATH_SCORES if k in present]
    metadata: list[Any] = [
        ("actor", who),
        ("paths", ", ".join(k for k in L.PATH_SCORES if k in present) or "none"),
        _meta_release(options["attack_version"], dom),
        ("generated by", "ttpgraph"),
    ]
    links = [(f"ATT&CK: {profile.name}", profile.url)] if profile.url else []
    notes = [profile.resolved_note] if profile.resolved_note else []
    layer = L.profile_layer(
        uses,
        name=f"{who} profile",
        actor=who,
        legend=legend,
        metadata=metadata,
        links=[x for x in links if x[1] and _URL.match(x[1])],
        **options,
    )
    return _export(
        LayerKind.profile,
        layer,
        filename=_filename(LayerKind.profile, [profile.group_id, profile.name], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


# ---------------------------------------------------------------- compare (heat)


def _resolve_weights(
    graph: Graph, weights: Mapping[str, float] | None, ids: Sequence[str]
) -> dict[str, float]:
    """Weights keyed by what the caller typed -> weights keyed by group id."""
    if not weights:
        return {}
    keys = list(weights)
    resolved = resolve_groups(graph, keys)
    out: dict[str, float] = {}
    for key, r in zip(keys, resolved, strict=True):
        w = weights[key]
        if isinstance(w, bool) or not isinstance(w, int | float) or w != w or w < 0:
            raise InvalidInput(f"weight of {key!r}: {w!r} is not a number >= 0")
        if r.attack_id not in ids:
            raise InvalidInput(f"weight of {key!r}: {r.attack_id} is not one of the actors")
        out[r.attack_id] = float(w)
    return out


def compare_layer_for(
    graph: Graph,
    *,
    groups: Sequence[str],
    weights: Mapping[str, float] | None = None,
    include_software: bool = False,
    domain: str | None = None,
    layers: Mapping[str, Any] | None = None,
) -> LayerExport:
    """N actors as one heat layer: score = how many of them (or their summed weight) use it.

    Techniques every actor uses get their own colour and a legend item; actor names go to the
    metadata and comment, with how each reaches the technique. ``layers`` adds layers people
    made as further "actors" (label -> layer, read as by :func:`import_layer_as_actor_set`),
    e.g. a red-team exercise held against known groups. At least two actors in all.
    """
    if layers:  # uploads: not worth a cache key
        return _compare_layer(graph, groups, weights, include_software, domain, layers)
    args = {
        "groups": list(groups),
        "weights": dict(weights or {}),
        "include_software": include_software,
        "domain": domain,
    }
    return graph.cached(
        "compare_layer_for",
        args,
        lambda: _compare_layer(graph, groups, weights, include_software, domain, None),
    )


def _compare_layer(
    graph: Graph,
    groups: Sequence[str],
    weights: Mapping[str, float] | None,
    include_software: bool,
    domain: str | None,
    layers: Mapping[str, Any] | None,
) -> LayerExport:
    groups = [g for g in groups if isinstance(g, str) and g.strip()]
    extra = dict(layers or {})
    if len(groups) + len(extra) < 2:
        raise InvalidInput("compare needs at least 2 actors (groups and layers together)")
    if len(groups) + len(extra) > MAX_ACTORS:
        raise InvalidInput(f"compare takes at most {MAX_ACTORS} actors")
    dom = _norm_domain(domain)
    # group id -> (display name, technique id -> path kinds)
    sets: dict[str, tuple[str, dict[str, list[str]]]] = {}
    if len(groups) >= 2:
        comparison = compare_groups(
            graph, groups=list(groups), include_software=include_software, domain=dom
        )
        for ref in comparison.actors:
            sets[ref.group_id] = (f"{ref.name} ({ref.group_id})", {})
        for t in comparison.techniques:
            for gid, kinds in t.actors.items():
                sets[gid][1][t.technique_id] = [k.value for k in kinds]
    elif groups:
        r = resolve_group(graph, groups[0])
        found = group_technique_sets(
            graph, [r.attack_id], include_software=include_software, domain=dom
        )
        sets[r.attack_id] = (f"{r.name} ({r.attack_id})", found.get(r.attack_id, ("", {}))[1])
    notes: list[str] = []
    left_out_of_layers: list[LeftOut] = []
    for label, data in extra.items():
        imported = import_layer_as_actor_set(graph, layer=data, domain=dom, similar=0)
        key = f"layer:{label}"
        if key in sets:
            raise InvalidInput(f"layer {label!r} is given twice")
        sets[key] = (f"{label} (layer)", {t: ["layer"] for t in imported.technique_ids})
        dom = dom or imported.domain
        left_out_of_layers += [
            LeftOut(technique_id=x.technique_id, reason=f"layer {label}: {x.reason}")
            for x in imported.left_out
        ]
        if imported.remapped:
            notes.append(
                f"layer {label}: revoked ids read as their replacements: "
                + ", ".join(f"{a} -> {b}" for a, b in sorted(imported.remapped.items()))
            )
    ids = sorted({tid for _, techs in sets.values() for tid in techs})
    index = _technique_index(graph, ids)
    dom = _choose_domain(graph, index, ids, dom)
    kept, left_out = _partition(ids, index, dom)
    by_weight = _resolve_weights(graph, weights, [g for g in sets if not g.startswith("layer:")])
    names = {gid: name for gid, (name, _) in sets.items()}
    entries = []
    for tech in kept:
        users = [gid for gid, (_, techs) in sets.items() if tech.technique_id in techs]
        # How each actor reaches it (no metadata dividers: mitreattack-python complains).
        how = [("how", f"{names[g]}: {', '.join(sets[g][1][tech.technique_id])}") for g in users]
        entries.append(
            {
                "technique_id": tech.technique_id,
                "tactics": list(tech.tactics),
                "actors": [names[g] for g in users],
                "metadata": how,
            }
        )
    everyone = [names[g] for g in sets]
    weight_by_name = {names[g]: w for g, w in by_weight.items()}
    options = _common_options(graph, dom, kept, None)
    common = [e for e in entries if len(e["actors"]) == len(everyone)]
    legend = [(f"used by all {len(everyone)} actors", L.COMMON_COLOR)] if common else []
    metadata: list[Any] = [("actors", ", ".join(everyone))]
    if by_weight:
        metadata.append(("weights", ", ".join(f"{names[g]}={w:g}" for g, w in by_weight.items())))
    metadata += [
        ("software counted", "yes" if include_software else "no"),
        _meta_release(options["attack_version"], dom),
        ("generated by", "ttpgraph"),
    ]
    layer = L.heat_layer(
        entries,
        name="Compared: " + ", ".join(n.split(" (")[0] for n in everyone)[:120],
        actors=everyone,
        weights=weight_by_name or None,
        legend=legend,
        metadata=metadata,
        **options,
    )
    parts = [g if not g.startswith("layer:") else _slug(g[6:], 20) for g in sets]
    return _export(
        LayerKind.compare,
        layer,
        filename=_filename(LayerKind.compare, parts, dom),
        kept=kept,
        left_out=left_out + left_out_of_layers,
        notes=notes,
    )


# ---------------------------------------------------------------- layers as input


def _counting_rule(
    parsed: L.ParsedLayer, min_score: float | None
) -> tuple[Callable[..., bool], str]:
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
    parsed = layer if isinstance(layer, L.ParsedLayer) else L.read_layer(layer)
    dom = _norm_domain(domain)
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
    index = _technique_index(graph, scores)
    replacements = [t.replaced_by for t in index.values() if t.revoked and t.replaced_by]
    index.update(_technique_index(graph, [r for r in replacements if r not in index]))
    release = layer_domain_release(graph, dom)
    kept: dict[str, ActorSetTechnique] = {}
    remapped: dict[str, str] = {}
    left_out: list[LeftOut] = []
    for tid, score in scores.items():
        tech = index.get(tid)
        use = tid
        if tech is not None and tech.revoked and tech.replaced_by:
            new = index.get(tech.replaced_by)
            if new is not None and _why_not(new, new.technique_id, dom) is None:
                remapped[tid] = use = new.technique_id
        reason = _why_not(index.get(use), use, dom)
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
    techniques: Sequence[L.ParsedTechnique], index: Mapping[str, _Tech]
) -> list[L.ParsedTechnique]:
    """Entries without a tactic written out once per tactic of the technique (where the layer
    has no entry of its own there), as the Navigator reads them: results stay per tactic."""
    own = {(t.technique_id, t.tactic) for t in techniques if t.tactic is not None}
    out: list[L.ParsedTechnique] = []
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
    parsed: dict[str, L.ParsedLayer] = {}
    for var, data in layers.items():
        try:
            parsed[var] = data if isinstance(data, L.ParsedLayer) else L.read_layer(data)
        except InvalidInput as exc:
            raise InvalidInput(f"{var}: {exc.detail}") from None
    domains = {p.domain for p in parsed.values()}
    if len(domains) > 1:
        found = ", ".join(f"{v} = {p.domain}" for v, p in parsed.items())
        raise InvalidInput(f"combine: the layers are from different domains ({found})")
    dom = domains.pop()
    release = layer_domain_release(graph, dom)
    index = _technique_index(graph, [t.technique_id for p in parsed.values() for t in p.techniques])
    left_out: list[LeftOut] = []
    notes: list[str] = []
    cleaned: dict[str, L.ParsedLayer] = {}
    for var, p in parsed.items():
        keep = []
        for t in _per_tactic(p.techniques, index):
            reason = _why_not(index.get(t.technique_id), t.technique_id, dom)
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
    layer = L.combine_layers(
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
        plats = _platforms(kept, None)
        if plats:
            layer = {**layer, "filters": {"platforms": plats}}
            order = list(layer)  # keep the format's key order: filters after description
            order.remove("filters")
            order.insert(order.index("domain") + (2 if "description" in layer else 1), "filters")
            layer = {k: layer[k] for k in order}
            L.validate_layer(layer)
    return _export(
        LayerKind.combine,
        layer,
        filename=_filename(LayerKind.combine, [layer["name"]], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


# ---------------------------------------------------------------- telemetry (what sources see)


def _telemetry_index(graph: Graph, domain: str) -> dict[str, list[dict[str, Any]]]:
    """Technique -> the data components and log sources that can show it (read-only: shared
    by every caller until the graph changes)."""

    def read() -> dict[str, list[dict[str, Any]]]:
        rows = graph.read(Q.layer_telemetry_sources, domain=domain, limit=100_000)
        return {r["technique_id"]: r["sources"] for r in rows}

    return graph.cached("layer_telemetry_sources", {"domain": domain}, read)


def _source_names(
    sources_by_technique: Mapping[str, list[dict[str, Any]]], level: TelemetryLevel
) -> dict[str, str]:
    """Every source of ``level`` known in the domain: lower-cased key -> display name.

    Data components are known by name and by ATT&CK id ("Process Creation", "DC0032"); log
    sources by name ("WinEventLog:Security").
    """
    names: dict[str, str] = {}
    for sources in sources_by_technique.values():
        for s in sources:
            if level == TelemetryLevel.data_component:
                display = f"{s['data_component']} ({s['data_component_id']})"
                names[s["data_component"].lower()] = display
                names[str(s["data_component_id"]).lower()] = display
                names[display.lower()] = display
            else:
                for ls in s["log_sources"] or []:
                    names[ls.lower()] = ls
    return names


def _sources_of(sources: list[dict[str, Any]], level: TelemetryLevel) -> list[str]:
    if level == TelemetryLevel.data_component:
        return sorted({f"{s['data_component']} ({s['data_component_id']})" for s in sources})
    return sorted({ls for s in sources for ls in (s["log_sources"] or [])})


def _resolve_sources(
    wanted: Sequence[str], names: Mapping[str, str], level: TelemetryLevel, domain: str
) -> list[str]:
    import difflib

    out: list[str] = []
    for w in wanted:
        key = w.strip().lower()
        if not key:
            continue
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=5, cutoff=0.6)
            raise NotFound(
                f"no {level.value.replace('_', ' ')} named {w!r} shows any {domain} technique",
                suggestions=list(dict.fromkeys(names[c] for c in close)),
            )
        if names[key] not in out:
            out.append(names[key])
    if not out:
        raise InvalidInput("telemetry: name at least one data component or log source")
    return out


def _actor_techniques(
    graph: Graph, actors: Sequence[str], include_software: bool, domain: str | None
) -> tuple[set[str], list[str]]:
    resolved = resolve_groups(graph, list(actors))
    ids = list(dict.fromkeys(r.attack_id for r in resolved))
    sets = group_technique_sets(graph, ids, include_software=include_software, domain=domain)
    techniques = {t for gid in ids for t in sets.get(gid, ("", {}))[1]}
    names = [f"{r.name} ({r.attack_id})" for r in {r.attack_id: r for r in resolved}.values()]
    return techniques, names


@cached_answer
def telemetry_layer_for(
    graph: Graph,
    *,
    sources: Sequence[str] | None = None,
    level: TelemetryLevel | str = TelemetryLevel.data_component,
    actors: Sequence[str] | Mapping[str, float] | None = None,
    include_software: bool = False,
    inventory: str | None = None,
    domain: str | None = None,
    platforms: Sequence[str] | None = None,
) -> LayerExport:
    """Techniques a chosen set of telemetry sources would let you detect.

    ``sources`` are data components (name or id, ``level="data_component"``) or log sources
    (``level="log_source"``, e.g. ``WinEventLog:Security``). A technique's sources come from
    ATT&CK v18 detection strategies -> analytics -> log sources -> data components, and from v17
    data components that DETECT it. Score = how many of the chosen sources can show it; the
    comment names those and the sources that could show it but are not chosen. Without
    ``actors`` only the techniques the sources see are written; with ``actors`` every technique
    of those actors is written (score 0 where nothing chosen sees it).

    Without ``sources``, ``actors`` and ``inventory`` ask the coverage service's telemetry plan
    (:func:`queries.coverage.prioritize_telemetry`) which sources to collect first: see
    :func:`telemetry_plan_layer_for`.
    """
    lvl = TelemetryLevel(level)
    if sources and inventory:
        raise InvalidInput(
            "telemetry: name the sources collected, or give actors and an inventory for a "
            "collection plan, not both"
        )
    if not sources:
        if actors and inventory:
            return telemetry_plan_layer_for(
                graph,
                actors=actors,
                inventory=inventory,
                level=lvl,
                include_software=include_software,
                domain=domain,
                platforms=platforms,
            )
        raise InvalidInput(
            "telemetry: name the sources collected, or give actors and an inventory for a plan"
        )
    actor_ids: set[str] | None = None
    actor_names: list[str] = []
    dom = _norm_domain(domain)
    if actors:
        actor_ids, actor_names = _actor_techniques(graph, list(actors), include_software, dom)
        if dom is None:
            index = _technique_index(graph, actor_ids)
            dom = _choose_domain(graph, index, actor_ids, None)
    dom = dom or "enterprise-attack"
    release = layer_domain_release(graph, dom)
    by_technique = _telemetry_index(graph, dom)
    chosen = _resolve_sources(sources, _source_names(by_technique, lvl), lvl, dom)
    chosen_set = set(chosen)
    seen_by: dict[str, tuple[list[str], list[str]]] = {}
    for tid, srcs in by_technique.items():
        all_here = _sources_of(srcs, lvl)
        collected = [s for s in all_here if s in chosen_set]
        if collected or (actor_ids is not None and tid in actor_ids):
            seen_by[tid] = (collected, [s for s in all_here if s not in chosen_set])
    wanted = sorted(actor_ids) if actor_ids is not None else sorted(seen_by)
    index = _technique_index(graph, wanted)
    kept, left_out = _partition(wanted, index, dom)
    kept = _on_platforms(kept, platforms)
    entries = [
        {
            "technique_id": t.technique_id,
            "tactics": list(t.tactics),
            "collected": seen_by.get(t.technique_id, ([], []))[0],
            "missing": seen_by.get(t.technique_id, ([], []))[1],
        }
        for t in kept
    ]
    seen = sum(1 for e in entries if e["collected"])
    notes = []
    if actor_ids is not None:
        notes.append(f"{seen} of {len(entries)} techniques of the actors can be seen")
    metadata: list[Any] = [("collected", ", ".join(chosen)), ("level", lvl.value)]
    if actor_names:
        metadata.append(("actors", ", ".join(actor_names)))
    metadata += [_meta_release(release.get("version"), dom), ("generated by", "ttpgraph")]
    layer = L.telemetry_layer(
        entries,
        name="Telemetry: " + ", ".join(chosen)[:100],
        attack_version=release.get("version"),
        domain=dom,
        platforms=_platforms(kept, platforms),
        metadata=metadata,
    )
    parts = [_slug(s.split(" (")[0], 24) for s in chosen]
    return _export(
        LayerKind.telemetry,
        layer,
        filename=_filename(LayerKind.telemetry, parts, dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


# ---------------------------------------------------------------- coverage, gaps, plan


def _inventory_notes(graph: Graph, inventory: str) -> tuple[str, list[str]]:
    """A one-line description of the inventory and notes on ids its import could not place."""
    info = C.inventory_info(graph, inventory=inventory)
    summary = info.summary or {}
    notes = []
    for key, what in (
        ("ids_unknown", "unknown to the loaded release"),
        ("ids_retired", "deprecated or revoked without replacement"),
    ):
        ids = [x.get("id") for x in summary.get(key) or [] if isinstance(x, dict)]
        if ids:
            shown = ", ".join(str(i) for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
            notes.append(f"inventory {info.name}: {len(ids)} ids {what} ({shown})")
    if info.stale:
        notes.append(f"inventory {info.name}: the ATT&CK releases changed since its import")
    line = f"{info.name} ({info.format}, {info.rules} rules, imported {info.imported_at})"
    return line, notes


@cached_answer
def coverage_layer_for(
    graph: Graph,
    *,
    inventory: str,
    domain: str | None = None,
    platforms: Sequence[str] | None = None,
    include_partial: bool = True,
) -> LayerExport:
    """What an imported detection inventory covers: score = number of rules, comment = their
    names (from :func:`queries.coverage.inventory_coverage`).

    Techniques only partially covered (a rule on the parent, or on a sub-technique only) score
    0 and get their own colour, legend item and a comment naming those rules;
    ``include_partial=False`` leaves them out.
    """
    dom = _norm_domain(domain)
    cov = C.inventory_coverage(graph, inventory=inventory, domain=dom)
    described, notes = _inventory_notes(graph, inventory)
    by_id = {t.technique_id: t for t in cov.techniques}
    ids = [t.technique_id for t in cov.techniques if include_partial or not t.partial]
    index = _technique_index(graph, ids)
    dom = _choose_domain(graph, index, ids, dom)
    kept, left_out = _partition(ids, index, dom)
    kept = _on_platforms(kept, platforms)
    entries = []
    partial: dict[str, tuple[list[str], int]] = {}
    for tech in kept:
        c = by_id[tech.technique_id]
        if c.partial:
            partial[tech.technique_id] = (list(c.partial_rules), c.partial_rule_count)
        entries.append(
            {
                "technique_id": tech.technique_id,
                "tactics": list(tech.tactics),
                "rules": [] if c.partial else _numbered(c.rules),
                "rule_count": 0 if c.partial else c.rule_count,
                "metadata": [("partial rule", r) for r in c.partial_rules],
            }
        )
    options = _common_options(graph, dom, kept, platforms)
    legend = [(f"{PARTIAL_LABEL}", PARTIAL_COLOR)] if partial else []
    full = len(kept) - len(partial)
    layer = L.coverage_layer(
        entries,
        name=f"Coverage: {cov.inventory}",
        description=(
            f"Score: number of detection rules of inventory {cov.inventory} per technique "
            f"({full} covered, {len(partial)} partially)."
        ),
        legend=legend,
        metadata=[
            ("inventory", described),
            _meta_release(options["attack_version"], dom),
            ("generated by", "ttpgraph"),
        ],
        **options,
    )
    for e in layer["techniques"]:
        found = partial.get(e["techniqueID"])
        if found is not None and "score" in e:
            rules, count = found
            n = max(count, len(rules))
            more = f"\n... and {n - len(rules)} more" if n > len(rules) else ""
            e["color"] = PARTIAL_COLOR
            e["comment"] = f"Partially covered ({n} rule{'s' if n != 1 else ''}"
            e["comment"] += " on its parent or sub-techniques):\n" + "\n".join(rules) + more
    L.validate_layer(layer)
    return _export(
        LayerKind.coverage,
        layer,
        filename=_filename(LayerKind.coverage, [cov.inventory], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


def _numbered(names: Sequence[str]) -> list[str]:
    """Rule names with repeats told apart ("X", "X (2)"): two rules may share a title, and the
    layer builder merges equal names, which would count them once."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _on_platforms(kept: list[_Tech], platforms: Sequence[str] | None) -> list[_Tech]:
    if not platforms:
        return kept
    wanted = {p.lower() for p in platforms}
    return [t for t in kept if any(p.lower() in wanted for p in t.platforms)]


def _actor_line(refs: Sequence[Any]) -> str:
    return ", ".join(
        f"{a.name} ({a.group_id})" + (f" x{a.weight:g}" if a.weight != 1 else "") for a in refs
    )


@cached_answer
def gaps_layer_for(
    graph: Graph,
    *,
    actors: Sequence[str] | Mapping[str, float],
    inventory: str,
    platforms: Sequence[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
) -> LayerExport:
    """The actors' techniques the inventory does not cover, scored by priority (from
    :func:`queries.coverage.gap_analysis`, rounded to a whole number; the exact value, the
    actors using it and partial rules in the metadata, the reasons in the comment). Sorted by
    score in the Navigator, highest first."""
    dom = _norm_domain(domain)
    ga = C.gap_analysis(
        graph,
        actors=dict(actors) if isinstance(actors, Mapping) else list(actors),
        inventory=inventory,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        include_software=include_software,
        partial_counts_as_covered=partial_counts_as_covered,
    )
    described, notes = _inventory_notes(graph, inventory)
    gaps = {t.technique_id: t for t in ga.gap_techniques()}
    index = _technique_index(graph, gaps)
    dom = _choose_domain(graph, index, gaps, dom)
    kept, left_out = _partition(gaps, index, dom)
    names = {a.group_id: f"{a.name} ({a.group_id})" for a in ga.actors}
    entries = []
    for tech in kept:
        g = gaps[tech.technique_id]
        entries.append(
            {
                "technique_id": tech.technique_id,
                "tactics": list(tech.tactics),
                # Whole numbers: mitreattack-python truncates scores to ints, so its SVG and
                # Excel would colour 21.4 as 21; the exact priority stays in the metadata.
                "priority": int(g.priority + 0.5),
                "metadata": [("priority (exact)", f"{g.priority:g}")]
                + [("actor", names.get(a, a)) for a in g.actors]
                + [("partial rule", r) for r in g.partial_rules],
                "reason": "\n".join(g.reasons),
            }
        )
    options = _common_options(graph, dom, kept, platforms)
    in_domain = [t for t in ga.techniques if dom in t.domains]
    covered = sum(1 for t in in_domain if t.covered)
    share = C.pct(covered, len(in_domain))
    layer = L.gaps_layer(
        entries,
        name=f"Gaps: {_short(ga.inventory)} vs " + ", ".join(a.name for a in ga.actors)[:80],
        description=(
            f"Techniques of {_actor_line(ga.actors)} that inventory {ga.inventory} does not "
            f"cover ({len(kept)} of {len(in_domain)}; coverage {share:g}%)."
            " Score: priority of the gap (higher: close it first); reasons in the comment."
        ),
        metadata=[
            ("actors", _actor_line(ga.actors)),
            ("inventory", described),
            ("coverage", f"{covered} of {len(in_domain)} techniques"),
            ("partial counts as covered", "yes" if partial_counts_as_covered else "no"),
            _meta_release(options["attack_version"], dom),
            ("generated by", "ttpgraph"),
        ],
        **options,
    )
    return _export(
        LayerKind.gaps,
        layer,
        filename=_filename(LayerKind.gaps, [ga.inventory, *(a.group_id for a in ga.actors)], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:39] + "…"


@cached_answer
def telemetry_plan_layer_for(
    graph: Graph,
    *,
    actors: Sequence[str] | Mapping[str, float],
    inventory: str,
    level: TelemetryLevel | str = TelemetryLevel.log_source,
    include_software: bool = False,
    domain: str | None = None,
    platforms: Sequence[str] | None = None,
    collected: Sequence[str] | None = None,
    steps: int = 50,
) -> LayerExport:
    """The coverage service's collection plan as a layer
    (:func:`queries.coverage.prioritize_telemetry`): each gap technique scored by how early the
    telemetry that lets you detect it comes in the plan (step 1 of N scores N, the last step 1;
    0: no ATT&CK telemetry is known for it), the step, source and analytics to build in the
    comment."""
    lvl = TelemetryLevel(level)
    dom = _norm_domain(domain)
    plan = C.prioritize_telemetry(
        graph,
        actors=dict(actors) if isinstance(actors, Mapping) else list(actors),
        inventory=inventory,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        include_software=include_software,
        level=lvl.value,
        collected=list(collected) if collected else None,
        limit=steps,
    )
    described, notes = _inventory_notes(graph, inventory)
    step_of: dict[str, C.TelemetryStep] = {}
    for step in plan.steps:
        for tid in step.techniques_gained:
            step_of.setdefault(tid, step)
    unreachable = set(plan.unreachable)
    # Every gap is written: reached by a step, known to no telemetry, or beyond the last step.
    gaps = C.gap_analysis(
        graph,
        actors=dict(actors) if isinstance(actors, Mapping) else list(actors),
        inventory=inventory,
        platforms=list(platforms) if platforms else None,
        domain=dom,
        include_software=include_software,
    ).gap_techniques()
    ids = list(step_of) + [t.technique_id for t in gaps if t.technique_id not in step_of]
    index = _technique_index(graph, ids)
    dom = _choose_domain(graph, index, ids, dom)
    kept, left_out = _partition(ids, index, dom)
    n = len(plan.steps)
    techniques = []
    for tech in kept:
        found = step_of.get(tech.technique_id)
        if found is None:
            why = (
                "No ATT&CK telemetry is known for this gap."
                if tech.technique_id in unreachable
                else f"Telemetry can show this gap, but only after the plan's {n} steps."
            )
            techniques.append(
                L.LayerTechnique(
                    technique_id=tech.technique_id,
                    tactics=list(tech.tactics),
                    score=0,
                    comment=why,
                    metadata=[("step", "none")],
                    links=[("ATT&CK: " + tech.technique_id, L.technique_url(tech.technique_id))],
                )
            )
            continue
        step = found
        lines = [
            f"Step {step.rank} of {n}: collect {step.source} (+{step.gain} gap techniques, "
            f"coverage {step.coverage_before:g}% -> {step.coverage_after:g}%)"
        ]
        for a in step.analytics:
            if a.technique_id == tech.technique_id:
                lines.append(
                    f"Build analytic {a.analytic_id} ({a.strategy_id} {a.strategy})"
                    + (f": {', '.join(a.channels)}" if a.channels else "")
                )
        techniques.append(
            L.LayerTechnique(
                technique_id=tech.technique_id,
                tactics=list(tech.tactics),
                score=n - step.rank + 1,
                comment="\n".join(lines),
                metadata=[
                    ("step", str(step.rank)),
                    ("collect", step.source),
                    *(("data component", d) for d in step.data_components),
                ],
                links=[("ATT&CK: " + tech.technique_id, L.technique_url(tech.technique_id))],
            )
        )
    options = _common_options(graph, dom, kept, platforms)
    plan_meta: list[Any] = [
        (
            f"step {s.rank}",
            f"{s.source} (+{s.gain}, {s.coverage_before:g}% -> {s.coverage_after:g}%)",
        )
        for s in plan.steps[:15]
    ]
    layer = L.build_layer(
        techniques,
        name=f"Telemetry plan: {_short(plan.inventory)} vs "
        + ", ".join(a.name for a in plan.actors)[:80],
        description=(
            f"Which telemetry ({lvl.value.replace('_', ' ')}s) to collect first to detect the "
            f"gaps of {_actor_line(plan.actors)} in inventory {plan.inventory}. Score: step 1 "
            f"of {n} scores {n}, the last step 1; 0: no ATT&CK telemetry is known."
        ),
        gradient=L.Gradient(L.HEAT_GRADIENT, 0, max(n, 2)),
        sorting=3,
        metadata=[
            ("actors", _actor_line(plan.actors)),
            ("inventory", described),
            ("level", lvl.value),
            *plan_meta,
            _meta_release(options["attack_version"], dom),
            ("generated by", "ttpgraph"),
        ],
        **options,
    )
    parts = [plan.inventory, *(a.group_id for a in plan.actors)]
    return _export(
        LayerKind.telemetry,
        layer,
        filename=_filename(LayerKind.telemetry, ["plan", *parts], dom),
        kept=kept,
        left_out=left_out,
        notes=notes,
    )


# ---------------------------------------------------------------- rendering


def _matrix_bundle_objects(graph: Graph, domain: str) -> list[dict[str, Any]]:
    matrices = graph.read(Q.layer_matrix, domain=domain, limit=10)
    if not matrices:
        raise NotFound(f"no current {domain} matrix in the graph")
    techniques = graph.read(Q.layer_matrix_techniques, domain=domain, limit=100_000)
    m = matrices[0]
    kill_chain = _KILL_CHAIN[domain]

    def ext(attack_id: str, url: str | None = None) -> list[dict[str, str]]:
        ref = {"source_name": "mitre-attack", "external_id": attack_id}
        if url:
            ref["url"] = url
        return [ref]

    objects: list[dict[str, Any]] = [
        {
            "type": "x-mitre-matrix",
            "id": m["stix_id"],
            "created": m["created"],
            "modified": m["modified"],
            "name": m["name"],
            "tactic_refs": [t["stix_id"] for t in m["tactics"]],
            "external_references": ext(domain),
        }
    ]
    for t in m["tactics"]:
        objects.append(
            {
                "type": "x-mitre-tactic",
                "id": t["stix_id"],
                "created": t["created"],
                "modified": t["modified"],
                "name": t["name"],
                "x_mitre_shortname": t["shortname"],
                "external_references": ext(t["attack_id"]),
            }
        )
    for t in techniques:
        if not t["tactics"]:
            continue
        objects.append(
            {
                "type": "attack-pattern",
                "id": t["stix_id"],
                "created": t["created"],
                "modified": t["modified"],
                "name": t["name"],
                "kill_chain_phases": [
                    {"kill_chain_name": kill_chain, "phase_name": p} for p in t["tactics"]
                ],
                "external_references": ext(t["technique_id"], L.technique_url(t["technique_id"])),
                "x_mitre_platforms": t["platforms"],
                "x_mitre_is_subtechnique": t["is_subtechnique"],
                "x_mitre_domains": [domain],
            }
        )
    return objects


def matrix_bundle(graph: Graph, domain: str) -> Path:
    """A STIX bundle of ``domain``'s matrix as the graph holds it (matrix, tactics, current
    techniques), for mitreattack-python's renderers; written once per loaded release into
    ttpgraph's cache folder (``$TTPGRAPH_CACHE_DIR`` or ``~/.cache/ttpgraph``)."""
    dom = _norm_domain(domain) or "enterprise-attack"
    release = layer_domain_release(graph, dom)
    key = hashlib.sha256(
        json.dumps([dom, release.get("sha256"), release.get("loaded_at")]).encode()
    ).hexdigest()[:20]
    folder = cache_dir() / "render"
    path = folder / f"matrix-{dom}-{key}.json"
    if path.is_file():
        return path
    bundle = {
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-" + key[:12],
        "objects": _matrix_bundle_objects(graph, dom),
    }
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.stem, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(bundle, fh)
    os.replace(tmp, path)
    return path


def require_renderer() -> None:
    """Raise RenderingUnavailable, naming the extra to install, unless SVG/Excel can be drawn;
    callers check first so that nothing is written when it cannot."""
    try:
        import mitreattack.navlayers  # noqa: F401
    except ImportError as exc:
        raise L.RenderingUnavailable(f"{L.RENDER_HINT}: {exc}") from None


def render_layer(
    graph: Graph,
    *,
    layer: Mapping[str, Any],
    fmt: str,
    out_path: str | Path,
    svg_options: Mapping[str, Any] | None = None,
) -> L.RenderReport:
    """Draw ``layer`` as SVG or Excel with mitreattack-python, on the matrix the graph holds.

    Raises :class:`queries.layers.RenderingUnavailable` (501 over HTTP) when mitreattack-python
    is not installed, :class:`InvalidInput` for a bad layer or format.
    """
    if fmt not in ("svg", "xlsx"):
        raise InvalidInput(f"format {fmt!r}: use svg or xlsx")
    require_renderer()
    parsed = L.read_layer(dict(layer))
    bundle = matrix_bundle(graph, parsed.domain)
    if fmt == "svg":
        return L.render_svg(layer, bundle, out_path, svg_options=svg_options)
    return L.render_xlsx(layer, bundle, out_path)
