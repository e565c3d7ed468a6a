"""What the coverage services share: checking a domain and platforms, reading actors (with
weights) and resolving them, percentages and bars, the cache scopes of a gap analysis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..cache import ACTOR_SCOPES, inventory_scope
from ..errors import InvalidInput
from ..graph import Graph
from ..resolve import Resolved, resolve_groups
from .models import ActorRef

MAX_ACTORS = 50
DOMAINS = ("enterprise-attack", "mobile-attack", "ics-attack")
BAR_WIDTH = 10


def check_domain(domain: str | None) -> str | None:
    if domain is None or not str(domain).strip():
        return None
    d = str(domain).strip().lower()
    d = d if d.endswith("-attack") else f"{d}-attack"
    if d not in DOMAINS:
        raise InvalidInput(f"domain {domain!r}: use enterprise, mobile or ics")
    return d


def check_platforms(platforms: Sequence[str] | None) -> list[str]:
    out = []
    for p in platforms or []:
        if not isinstance(p, str) or not p.strip():
            raise InvalidInput("platform: empty name")
        if len(p) > 60:
            raise InvalidInput("platform: longer than 60 characters")
        out.append(p.strip().lower())
    return sorted(set(out))


def real_channel(channel: Any) -> str | None:
    """A log source channel, or None where ATT&CK wrote none (some analytics say 'None')."""
    if not isinstance(channel, str) or channel.strip() in ("", "None"):
        return None
    return channel.strip()


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def bar(percent: float | None, width: int = BAR_WIDTH) -> str:
    """``████████░░`` for 80%."""
    if percent is None:
        return "·" * width
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def parse_actor_args(values: Sequence[str]) -> list[str] | dict[str, float]:
    """``["APT29=2", "FIN7"]`` -> ``{"APT29": 2.0, "FIN7": 1.0}``; no weights -> the list."""
    weighted: dict[str, float] = {}
    any_weight = False
    for v in values:
        name, sep, w = v.rpartition("=")
        if sep and name.strip():
            try:
                weight = float(w)
            except ValueError:
                weighted[v] = weighted.get(v, 1.0)
                continue
            any_weight = True
            weighted[name.strip()] = weight
        else:
            weighted[v] = 1.0
    return weighted if any_weight else list(values)


def split_values(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values (``-a APT29,FIN7 -a APT28``, ``?actors=APT29,FIN7``)."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def parse_weights(
    values: Sequence[str] | None, *, label: str = "weight"
) -> dict[str, float] | None:
    """``["APT29=2"]`` -> ``{"APT29": 2.0}``; ``label`` names the option in the error."""
    weights: dict[str, float] = {}
    for v in values or []:
        name, sep, number = v.rpartition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weights[name.strip()] = float(number)
        except ValueError:
            raise InvalidInput(f"{label} {v!r}: expected ACTOR=NUMBER, like APT29=2") from None
    return weights or None


def actors_with_weights(
    actors: Sequence[str] | None, weights: Sequence[str] | None, *, label: str = "weight"
) -> list[str] | dict[str, float]:
    """Actors for the coverage services: weights inline (``APT29=2``) or given apart."""
    parsed = parse_actor_args(split_values(actors))
    extra = parse_weights(weights, label=label) or {}
    if not extra:
        return parsed
    out = dict(parsed) if isinstance(parsed, dict) else dict.fromkeys(parsed, 1.0)
    for name, w in extra.items():
        if name not in out:
            raise InvalidInput(f"{label} {name!r}: not one of the actors")
        out[name] = w
    return out


def resolve_actors(graph: Graph, actors: Sequence[str] | Mapping[str, float]) -> list[ActorRef]:
    """Actors (ids, names, aliases; optional weights) -> groups, each once (highest weight)."""
    items = weighted_actors(actors)
    return actor_refs(items, resolve_groups(graph, [n for n, _ in items]))


def weighted_actors(actors: Sequence[str] | Mapping[str, float]) -> list[tuple[str, float]]:
    """Actors (ids, names, aliases; a mapping gives weights) as (text, weight), checked:
    at least one, at most :data:`MAX_ACTORS`, weights finite numbers >= 0."""
    if isinstance(actors, str):
        actors = [actors]
    if isinstance(actors, Mapping):
        items = [(str(k), v) for k, v in actors.items()]
    else:
        items = [(a, 1.0) for a in actors]
    if not items:
        raise InvalidInput("actors: give at least one actor (id, name or alias)")
    if len(items) > MAX_ACTORS:
        raise InvalidInput(f"actors: at most {MAX_ACTORS}, got {len(items)}")
    for name, w in items:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise InvalidInput(f"actors: weight of {name!r} must be a number >= 0")
    return items


def actor_refs(items: list[tuple[str, float]], resolved: list[Resolved]) -> list[ActorRef]:
    """The weighted actors as the groups they resolved to, each once (its highest weight);
    InvalidInput when no weight is positive."""
    out: dict[str, ActorRef] = {}
    for (_, w), r in zip(items, resolved, strict=True):
        prev = out.get(r.attack_id)
        if prev is None or w > prev.weight:
            out[r.attack_id] = ActorRef(
                group_id=r.attack_id, name=r.name, weight=float(w), matched=r.matched, note=r.note
            )
    if sum(a.weight for a in out.values()) <= 0:
        raise InvalidInput("actors: at least one weight must be positive")
    return list(out.values())


def gap_scopes(kwargs: dict[str, Any]) -> tuple[str, ...]:
    """What a gap analysis (and what builds on it) reads: ATT&CK, the organisation's clusters,
    and its inventory — another inventory's import leaves its answer cached."""
    inventory = kwargs.get("inventory")
    name = inventory.strip() if isinstance(inventory, str) else ""
    return (*ACTOR_SCOPES, inventory_scope(name))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
