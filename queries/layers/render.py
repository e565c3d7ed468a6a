"""Rendering layers (mitreattack-python, imported lazily).

:func:`render_svg` and :func:`render_xlsx` wrap mitreattack-python's ``ToSvg`` and ``ToExcel``
(imported lazily; :class:`RenderingUnavailable` when it is not installed) and feed them a local
STIX bundle, never the network. See :func:`render_svg` for the work-arounds.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from queries.errors import InvalidInput, TtpgraphError

from .format import (
    DEFAULT_GRADIENT,
    DOMAINS,
    HEX_COLOR,
    LAYER_KEYS,
    LAYER_VERSION,
    NAVIGATOR_VERSION,
    TECHNIQUE_KEYS,
    ParsedLayer,
    as_text,
)
from .read import read_layer

__all__ = ["RENDER_HINT", "RenderReport", "RenderingUnavailable", "render_svg", "render_xlsx"]


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
    out = {k: v for k, v in json.loads(json.dumps(layer)).items() if k in LAYER_KEYS}
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
            {"name": m["name"], "value": as_text(m["value"])}
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
        t = {k: v for k, v in t.items() if k in TECHNIQUE_KEYS}
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
    if not isinstance(color, str) or not HEX_COLOR.match(color):
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
