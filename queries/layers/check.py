"""Checking layers (shared by :func:`validate_layer` and :mod:`queries.layers.read`).

:func:`validate_layer` checks a layer against the 4.5 rules (plus a few stricter ones that the
Navigator and mitreattack-python need, listed there) and raises :class:`InvalidInput`;
:func:`layer_problems` lists every problem.
"""

from __future__ import annotations

import re
from typing import Any

from queries.errors import InvalidInput

from .format import (
    DOMAINS,
    HEX_COLOR,
    LAYER_KEYS,
    LAYER_VERSION,
    LAYOUT_VALUES,
    MIN_NAVIGATOR_VERSION,
    TACTIC,
    TECHNIQUE_ID,
    TECHNIQUE_KEYS,
    URL,
    Gradient,
    LegendItem,
    ParsedLayer,
    ParsedTechnique,
    as_text,
    is_finite_number,
    is_number,
    number,
)

__all__ = ["layer_problems", "validate_layer"]


_LEGACY_DOMAINS = {
    "mitre-enterprise": "enterprise-attack",
    "mitre-mobile": "mobile-attack",
    "mitre-ics": "ics-attack",
}

_LAYER_BOOLS = (
    "hideDisabled",
    "showTacticRowBackground",
    "selectTechniquesAcrossTactics",
    "selectSubtechniquesWithParent",
    "selectVisibleTechniques",
)


class Findings:
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


def version_tuple(text: str) -> tuple[int, ...] | None:
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        return None
    return tuple(int(p) for p in text.strip().split("."))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_items(
    f: Findings, where: str, items: Any, kind: str, fields: tuple[str, str]
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
            if kind == "metadata" and (is_number(item[b]) or isinstance(item[b], bool)):
                f.warn(at, f"{b} should be a string, not {_kind(item[b])}")
            else:
                f.error(at, f"{b} must be a string, not {_kind(item[b])}")
        if kind == "links" and isinstance(item.get("url"), str) and not URL.match(item["url"]):
            f.warn(at, "url needs a protocol such as https://")
        extra = set(item) - set(fields)
        if extra:
            f.warn(at, f"unknown key {sorted(extra)[0]!r}")
        if all(k in item for k in fields):
            kept.append({a: item[a], b: item[b]})
    return kept


def _check_color_field(f: Findings, where: str, value: Any) -> str | None:
    if not isinstance(value, str):
        f.error(where, f"color must be a string, not {_kind(value)}")
        return None
    if value and not HEX_COLOR.match(value):
        f.warn(where, f"color {value!r} is not a hex colour like '#ff6666'")
    return value or None


def check_layer(data: Any, f: Findings) -> ParsedLayer | None:
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
                lv_parts = version_tuple(lv)
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
                parsed_nv = version_tuple(nv)
                if parsed_nv is None or parsed_nv < MIN_NAVIGATOR_VERSION:
                    f.warn("versions.navigator", f"{nv!r} is older than 4.9.0")
            av = versions.get("attack")
            if av is not None:
                if isinstance(av, str):
                    attack_version = av
                elif is_number(av):
                    attack_version = as_text(av)
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
                allowed = LAYOUT_VALUES.get(key)
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
                    if not HEX_COLOR.match(c):
                        f.warn(f"gradient.colors[{i}]", f"{c!r} is not a hex colour")
            for key, value in (("minValue", lo), ("maxValue", hi)):
                if value is None:
                    f.error("gradient", f"{key} missing")
                    ok = False
                elif not is_finite_number(value):
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

    extra = set(data) - LAYER_KEYS - {"version"}
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


def _check_technique(f: Findings, at: str, t: Any) -> ParsedTechnique | None:
    if not isinstance(t, dict):
        f.error(at, f"must be an object, not {_kind(t)}")
        return None
    before = len(f.errors)
    tid = t.get("techniqueID")
    if tid is None:
        f.error(at, "techniqueID missing")
    elif not isinstance(tid, str):
        f.error(at, f"techniqueID must be a string, not {_kind(tid)}")
    elif not TECHNIQUE_ID.match(tid):
        f.error(at, f"techniqueID {tid!r} is not an ATT&CK technique id like T1059.001")
    tactic = t.get("tactic")
    if tactic is not None:
        if not isinstance(tactic, str):
            f.error(at, f"tactic must be a string, not {_kind(tactic)}")
        elif not TACTIC.match(tactic):
            f.error(at, f"tactic {tactic!r} is not a tactic shortname like 'defense-evasion'")
    score = t.get("score")
    if "score" in t:
        if score is None:
            f.warn(at, "score is null (read as unscored)")
        elif not is_finite_number(score):
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
    extra = set(t) - TECHNIQUE_KEYS
    for key in sorted(extra):
        f.warn(at, f"unknown key {key!r}")
    if len(f.errors) > before:
        return None
    return ParsedTechnique(
        technique_id=str(tid),
        tactic=tactic,
        score=number(score) if isinstance(score, int | float) else None,
        color=color,
        comment=comment,
        enabled=enabled,
        show_subtechniques=show,
        metadata=tuple(metadata),
        links=tuple(links),
    )


def layer_problems(layer: Any) -> list[str]:
    """Every way ``layer`` breaks the rules of :func:`validate_layer` (empty when it is fine)."""
    f = Findings("layer")
    check_layer(layer, f)
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
