"""What every layer service shares: the :class:`LayerExport` it returns, and the facts the graph
holds about the answer's techniques, checked against the loaded release.

The services (:mod:`queries.layers.actor_layers`, :mod:`~queries.layers.input_layers`,
:mod:`~queries.layers.detection_layers`) ask the graph (and the actor and coverage services) for
the answer, check every technique against the loaded release, and hand plain entries to the
builders of :mod:`queries.layers.answers` and :mod:`queries.layers.build`, which know the layer
format. What the graph decides, never a constant:

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
file name, counts, what was left out and why).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from ..actors import DOMAINS
from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph

__all__ = ["LayerExport", "LayerKind", "LeftOut", "layer_domain_release"]


class LayerKind(StrEnum):
    profile = "profile"
    compare = "compare"
    coverage = "coverage"
    gaps = "gaps"
    telemetry = "telemetry"
    combine = "combine"


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


# ---------------------------------------------------------------- technique facts


@dataclass(frozen=True)
class Tech:
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


def technique_index(graph: Graph, ids: Iterable[str]) -> dict[str, Tech]:
    """What the graph knows of ``ids`` (ids it does not know are absent). With the answer cache
    on, every technique is read once per graph version and looked up from there."""
    wanted = sorted({i for i in ids if isinstance(i, str)})
    if not wanted:
        return {}
    if graph.cache.enabled:
        every = graph.cached("layer_techniques", {}, lambda: _read_techniques(graph, []))
        return {i: every[i] for i in wanted if i in every}
    return _read_techniques(graph, wanted)


def _read_techniques(graph: Graph, wanted: list[str]) -> dict[str, Tech]:
    rows = graph.read(Q.layer_techniques, technique_ids=wanted, limit=100_000)
    out: dict[str, Tech] = {}
    for r in rows:
        tech = Tech(
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


def why_not(tech: Tech | None, technique_id: str, domain: str) -> str | None:
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


def partition(
    ids: Iterable[str], index: Mapping[str, Tech], domain: str
) -> tuple[list[Tech], list[LeftOut]]:
    kept: list[Tech] = []
    left: list[LeftOut] = []
    for tid in dict.fromkeys(ids):
        reason = why_not(index.get(tid), tid, domain)
        if reason is None:
            kept.append(index[tid])
        else:
            left.append(LeftOut(technique_id=tid, reason=reason))
    return kept, left


def norm_domain(domain: str | None) -> str | None:
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
    d = norm_domain(domain) or "enterprise-attack"
    found = _releases(graph).get(d)
    if found is None:
        raise NotFound(
            f"no ATT&CK release of {d} is loaded (ttpgraph load --domain {d.split('-')[0]})"
        )
    return found


def choose_domain(
    graph: Graph, index: Mapping[str, Tech], ids: Iterable[str], domain: str | None
) -> str:
    """The caller's domain, else the one holding most of the current techniques."""
    chosen = norm_domain(domain)
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


def platform_filter(kept: Sequence[Tech], given: Sequence[str] | None) -> list[str]:
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


def slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (s[:limit].rstrip("-.") or "layer").lower()


def export_filename(kind: LayerKind, parts: Sequence[str], domain: str) -> str:
    shown = list(parts[:5])
    if len(parts) > 5:
        shown.append(f"and-{len(parts) - 5}-more")
    stem = "-".join([kind.value, *(p for p in shown if p)])
    if domain != "enterprise-attack":
        stem += "-" + domain.split("-")[0]
    return slug(stem, 120) + ".json"


def make_export(
    kind: LayerKind,
    layer: dict[str, Any],
    *,
    filename: str,
    kept: Sequence[Tech],
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


def common_options(
    graph: Graph, domain: str, kept: Sequence[Tech], platforms: Sequence[str] | None
) -> dict[str, Any]:
    release = layer_domain_release(graph, domain)
    return {
        "attack_version": release.get("version"),
        "domain": domain,
        "platforms": platform_filter(kept, platforms),
    }


def meta_release(release_version: str | None, domain: str) -> tuple[str, str]:
    return ("ATT&CK", f"{domain} {release_version or '(version unknown)'}")
