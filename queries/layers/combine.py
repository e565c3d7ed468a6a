"""Combining layers: :func:`combine_layers` is the Navigator's "create layer from other layers"
score expression, evaluated safely with :mod:`ast` (numbers, layer variables, ``+ - * /``, unary
minus, ``min()``, ``max()``, parentheses; nothing else).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from queries.errors import InvalidInput

from .build import build_layer
from .check import version_tuple
from .format import (
    DEFAULT_GRADIENT,
    HEX_COLOR,
    URL,
    Gradient,
    LayerTechnique,
    ParsedLayer,
    is_finite_number,
    number,
)
from .read import read_layer

__all__ = ["combine_layers"]


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
            if not is_finite_number(node.value):
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
        good = [v for v in found if version_tuple(v) is not None]
        attack_version = max(good, key=lambda v: version_tuple(v) or ()) if good else None

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
        result = number(round(result, 6))
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
            if attr == "color" and not (copied and HEX_COLOR.match(copied)):
                continue  # read_layer lets other colour notations through; layers need hex
            if attr == "links":
                copied = tuple(x for x in copied if "divider" in x or URL.match(x.get("url", "")))
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
