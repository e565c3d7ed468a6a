"""YAML rule files: the safe loader (timestamps kept as text), refused past a nesting depth, and
only the top-level keys a parser reads constructed."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .model import ParseIssue
from .values import one_line, type_name


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml when available) with timestamps kept as strings."""


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _YamlLoader.construct_yaml_str)

_NEST_LIMIT = 200
"""Deeper YAML is refused: libyaml's composer recurses on the C stack and crashes the process
(SIGSEGV) on tens of thousands of levels; real rules nest fewer than ten."""
_DEEP_BLOCK = re.compile(rf"^[ \t?:-]{{{_NEST_LIMIT},}}", re.M)
_COLLECTION_START = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_COLLECTION_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _might_nest_deeply(text: str) -> bool:
    """Cheap upper bound on YAML nesting: flow brackets plus the longest line prefix of
    indentation and compact ``- ``/``? ``/``: `` indicators. False for ordinary rule files."""
    return text.count("[") + text.count("{") > _NEST_LIMIT or bool(_DEEP_BLOCK.search(text))


def _nests_too_deeply(text: str) -> bool:
    """Measure nesting with the (non-recursive) event parser, stopping early when too deep."""
    depth = 0
    for event in yaml.parse(text, Loader=_YamlLoader):
        if isinstance(event, _COLLECTION_START):
            depth += 1
            if depth > _NEST_LIMIT:
                return True
        elif isinstance(event, _COLLECTION_END):
            depth -= 1
    return False


def _yaml_reason(exc: Exception) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return one_line(f"{exc.problem or exc.context or 'syntax error'}{where}")
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return one_line(str(exc) or type(exc).__name__)


def load_yaml(
    text: str, rel: str, issues: list[ParseIssue], keys: frozenset[str]
) -> list[tuple[int, dict]] | None:
    """The file's mapping documents as ``(1-based index, mapping)``; ``None`` if unparsable.

    Only the top-level ``keys`` are constructed (a rule's ``detection``/``search`` body is parsed
    but never turned into Python objects: most of the time of a full load); a document using a
    ``<<`` merge key at the top is constructed whole. Empty documents (a trailing ``---``) are
    ignored; any other non-mapping document is an issue.
    """
    docs: list[object] = []
    try:
        if _might_nest_deeply(text) and _nests_too_deeply(text):
            issues.append(ParseIssue(rel, f"invalid YAML: nested over {_NEST_LIMIT} levels deep"))
            return None
        loader = _YamlLoader(text)
        try:
            while loader.check_node():
                docs.append(_construct_top(loader, loader.get_node(), keys))
        finally:
            loader.dispose()
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        issues.append(ParseIssue(rel, f"invalid YAML: {_yaml_reason(exc)}"))
        return None
    out = []
    for i, doc in enumerate(docs, 1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            where = f"document {i}" if len(docs) > 1 else "document"
            issues.append(ParseIssue(rel, f"{where} is a {type_name(doc)}, not a mapping"))
            continue
        out.append((i, doc))
    return out


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_top(loader: Any, node: yaml.Node | None, keys: frozenset[str]) -> object:
    """Construct a document, or of a mapping document only the values under ``keys``."""
    if node is None:
        return None
    loader.constructed_objects = {}
    loader.recursive_objects = {}
    if not isinstance(node, yaml.MappingNode) or any(k.tag == _MERGE_TAG for k, _ in node.value):
        return loader.construct_document(node)
    doc: dict[str, object] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value in keys:
            doc[key_node.value] = loader.construct_object(value_node, deep=True)
    return doc
