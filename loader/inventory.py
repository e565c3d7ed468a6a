"""Detection-rule inventory parsers: an organisation's rules in, ATT&CK technique ids out.

Pure functions, no database: each ``parse_*`` reads files from disk and returns a
:class:`ParsedInventory` (rules with normalised technique ids, parse issues, ignored ids, notes).

Formats (keys of :data:`PARSERS`):

- ``sigma``: SigmaHQ YAML rules, a folder (recursive) or a single file.
- ``elastic``: elastic/detection-rules TOML (``[rule]``) and hunting TOML (``[hunt]``).
- ``splunk``: Splunk Security Content detection YAML (``tags.mitre_attack_id`` or, in the newer
  schema, a top-level ``mitre_attack_id``).
- ``splunk-es``: a Splunk ES saved-search export (``| rest /services/saved/searches``), CSV or JSON.
- ``sentinel``: Microsoft Sentinel analytic rules, YAML (``relevantTechniques``) or an ARM JSON
  export (``properties.techniques`` / ``subTechniques``).
- ``csv``: a plain CSV/TSV with a technique column, or a plain list with one id per line.
- ``layer``: an ATT&CK Navigator layer (4.x).

Robustness contract: a file that cannot be read or parsed (bad syntax, not UTF-8, not a mapping,
empty, over :data:`MAX_FILE_BYTES`, a symlink leading out of the imported root, not a regular
file) becomes a :class:`ParseIssue` with a one-line reason; it never raises. Only a path that does
not exist or is the wrong kind raises :class:`queries.errors.InvalidInput`.

Status normalisation (``Rule.status``, see :data:`STATUSES`):

============== ===========================================================================
active          Sigma ``stable``; Elastic ``production``; Splunk ``production``; Sentinel
                ``Available``/``Installed`` or ``enabled: true``; Splunk ES enabled search;
                CSV ``active``/``enabled``/``production``/``stable``/...; CSV without a status
                column, plain lists and Navigator layers (their entries are claimed coverage)
test            Sigma ``test``; Splunk ``validation``; CSV ``test``/``testing``
experimental    Sigma/Splunk ``experimental``; Elastic ``development``; CSV ``beta``/...
deprecated      a ``deprecated`` status/maturity; Sigma ``deprecated/`` folder; Elastic
                ``rules/_deprecated/``; Splunk ``deprecated/`` or ``removed/`` folder and
                ``removed``; Sentinel names starting ``[Deprecated]``
unsupported     Sigma ``unsupported`` status or ``unsupported/`` folder; Sentinel ``NotAvailable``
building_block  Elastic ``building_block_type`` set or ``rules_building_block/``
disabled        Splunk ES ``disabled=1``; Sentinel/CSV ``enabled: false``; CSV ``disabled``
hunting         Elastic hunting TOML (``[hunt]``)
unknown         no status given, or a value not in the tables above (``raw_status`` keeps it)
============== ===========================================================================

Precedence where several apply: deprecated (folder or value) > unsupported folder >
building_block > disabled > the status field.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
import tomllib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from queries.errors import InvalidInput

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Files larger than this are skipped with a :class:`ParseIssue`."""

ACTIVE = "active"
TEST = "test"
EXPERIMENTAL = "experimental"
DEPRECATED = "deprecated"
UNSUPPORTED = "unsupported"
BUILDING_BLOCK = "building_block"
DISABLED = "disabled"
HUNTING = "hunting"
UNKNOWN = "unknown"
# How a rule tagged with a parent covers its sub-techniques, and one tagged with a sub-technique
# its parent (inventory options; loader.inventory_import applies them).
PARENT_MODES = ("partial", "full", "none")
SUB_MODES = ("partial", "none")
STATUSES: tuple[str, ...] = (
    ACTIVE,
    TEST,
    EXPERIMENTAL,
    DEPRECATED,
    UNSUPPORTED,
    BUILDING_BLOCK,
    DISABLED,
    HUNTING,
    UNKNOWN,
)
"""Every value :attr:`Rule.status` can take."""


# --------------------------------------------------------------------------- data model


@dataclass
class Rule:
    """One detection rule (or one claimed technique, for layers and plain lists)."""

    name: str
    rule_id: str
    file: str
    """Path of the source file relative to the imported root (POSIX separators)."""
    status: str
    """One of :data:`STATUSES`."""
    techniques: list[str]
    """Normalised ATT&CK ids (``T1059``, ``T1059.001``), de-duplicated, sorted."""
    raw_tags: list[str]
    """The ATT&CK-related values as the file wrote them, for the report."""
    format: str
    raw_status: str = ""
    """The status as the file wrote it (empty when absent)."""


@dataclass
class ParseIssue:
    """A file (or row) that could not be read as a rule: counted and listed, never raised."""

    file: str
    message: str


@dataclass
class ParsedInventory:
    """The result of one import."""

    format: str
    root: str
    rules: list[Rule] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)
    ignored_ids: list[str] = field(default_factory=list)
    """Values found where a technique id belongs that are not ATT&CK technique ids (ATLAS
    ``AML.T0051``, malformed ``T1059.1``, ...), de-duplicated, sorted."""
    notes: list[str] = field(default_factory=list)
    """Informational lines: content deliberately not imported (e.g. Splunk stories, ES saved
    searches that are not correlation searches), duplicates merged."""


# --------------------------------------------------------------------------- technique ids

_TECHNIQUE_RE = re.compile(
    r"(?:attack\.)?T(?P<tech>\d{4})(?:[./-](?P<sub>\d{3}))?",
    re.IGNORECASE | re.ASCII,
)
_TECHNIQUE_URL_RE = re.compile(
    r"https?://attack\.mitre\.org/techniques/T(?P<tech>\d{4})(?:/(?P<sub>\d{3}))?/?",
    re.IGNORECASE | re.ASCII,
)


def normalize_technique_id(raw: object) -> str | None:
    """Return the canonical ATT&CK technique id for ``raw``, or ``None`` if it is not one.

    Accepted, after stripping surrounding whitespace, case-insensitively:

    - ``T1059``, ``t1059`` -- ``T`` and exactly four ASCII digits;
    - a sub-technique written ``T1059.001``, ``T1059/001`` or ``T1059-001`` -- exactly three
      digits, not ``000``;
    - either of the above with the Sigma tag namespace ``attack.`` (``attack.t1059.001``);
    - an attack.mitre.org technique URL (``https://attack.mitre.org/techniques/T1059/001/``).

    Everything else is rejected: tactics (``TA0002``, ``attack.execution``), groups, software,
    data sources, mitigations (``attack.g0016``, ``S0154``, ``DS0009``, ``M1036``), ATLAS ids
    (``AML.T0051``), sub-techniques with other than three digits (``T1059.1``: ambiguous),
    five-digit numbers, inner whitespace (``T 1059``), a missing ``T`` (``1059.001``), trailing
    text (``T1059.001 PowerShell``) and non-string values.

    >>> normalize_technique_id(" attack.t1059.001 ")
    'T1059.001'
    >>> normalize_technique_id("AML.T0051") is None
    True
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    m = _TECHNIQUE_RE.fullmatch(text) or _TECHNIQUE_URL_RE.fullmatch(text)
    if m is None:
        return None
    sub = m.group("sub")
    if sub is None:
        return f"T{m.group('tech')}"
    if sub == "000":
        return None
    return f"T{m.group('tech')}.{sub}"


class _Techniques:
    """Collects the technique ids of one rule; rejected values go to the inventory's ignored set."""

    def __init__(self, ignored: set[str]) -> None:
        self.ids: set[str] = set()
        self.raw: list[str] = []
        self._raw_seen: set[str] = set()  # membership in constant time (a list was quadratic)
        self._ignored = ignored

    def add(self, value: object, *, keep_raw: bool = True) -> None:
        text = _scalar_str(value)
        if text is None or not text.strip():
            return
        text = text.strip()
        if keep_raw and text not in self._raw_seen:
            self._raw_seen.add(text)
            self.raw.append(text)
        tid = normalize_technique_id(text)
        if tid is None:
            self._ignored.add(_one_line(text, 80))
        else:
            self.ids.add(tid)

    def add_all(self, values: object) -> None:
        for value in _as_list(values):
            self.add(value)

    def sorted(self) -> list[str]:
        return sorted(self.ids)


# --------------------------------------------------------------------------- small helpers


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and control characters; cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _scalar_str(value: object) -> str | None:
    """A scalar as text (str, int, float); ``None`` for containers, bools and nulls.

    Containers are refused on purpose: YAML aliases can make a small file describe a huge
    nested structure, so nothing here ever calls ``str()`` on one.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _as_list(value: object) -> list[Any]:
    """A list as is, a single scalar as a one-item list, anything else as empty."""
    if isinstance(value, list):
        return value
    if _scalar_str(value) is not None:
        return [value]
    return []


def _id_or(value: object, fallback: str) -> str:
    """A stripped scalar id, or ``fallback`` when it is missing or blank."""
    return (_scalar_str(value) or "").strip() or fallback


def _truthy(value: object) -> bool:
    """Splunk/CSV style booleans: ``1``, ``true``, ``yes``, ``on``, ``t``, ``y`` (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "t", "y"}
    return False


def _falsy(value: object) -> bool:
    """Explicitly false (as opposed to absent): ``0``, ``false``, ``no``, ``off``, ``f``, ``n``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        return value.strip().lower() in {"0", "false", "no", "off", "f", "n"}
    return False


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _dir_parts(root: Path, rel: str) -> set[str]:
    """Lower-cased folder names of a file: the folders under the root and, when the root is a
    folder, the root's own name (importing ``sigma/deprecated`` itself marks its rules)."""
    parts = {p.lower() for p in rel.split("/")[:-1]}
    if rel != root.name or "/" in rel or not root.is_file():
        parts.add(root.name.lower())
    return parts


class _Skips:
    """Aggregates deliberately skipped files by reason into a few note lines."""

    def __init__(self) -> None:
        self.by_reason: dict[str, list[str]] = {}

    def add(self, reason: str, file: str) -> None:
        self.by_reason.setdefault(reason, []).append(file)

    def notes(self) -> list[str]:
        out = []
        for reason, files in self.by_reason.items():
            shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
            out.append(f"skipped {len(files)} {reason}: {shown}")
        return out


# --------------------------------------------------------------------------- files


def _check_input(path: Path | str, *, file_only: bool) -> Path:
    """Validate the user-given path; raise :class:`InvalidInput` naming it if unusable."""
    p = Path(path).expanduser()
    shown = _one_line(str(p), 500)
    try:
        exists = p.exists()
        is_file = p.is_file()
        is_dir = p.is_dir()
    except OSError as exc:
        raise InvalidInput(f"cannot access inventory path {shown}: {exc.strerror}") from None
    if not exists:
        raise InvalidInput(f"inventory path does not exist: {shown}")
    if file_only and is_dir:
        raise InvalidInput(f"inventory path is a directory, expected a file: {shown}")
    if not (is_file or (is_dir and not file_only)):
        raise InvalidInput(f"inventory path is not a regular file or directory: {shown}")
    return p.resolve()


def _walk(
    root: Path, suffixes: tuple[str, ...], issues: list[ParseIssue]
) -> list[tuple[Path, str]]:
    """Files to read under ``root`` as ``(path, path relative to root)``, in sorted order.

    A single file is returned as is. In a folder: hidden files and folders (``.git``, ...) are
    skipped; a symlink whose target lies outside the root is skipped with an issue; a symlinked
    folder inside the root is not descended (its target is walked in its own right); a symlinked
    file inside the root is read only if its target is not read anyway (then under the link's
    name); an unreadable folder is an issue.
    """
    if root.is_file():
        return [(root, root.name)]
    out: list[tuple[Path, str]] = []
    links: list[tuple[Path, str, Path]] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename).relative_to(root).as_posix() if exc.filename else "."
        issues.append(ParseIssue(where, f"cannot read folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            full = here / d
            if full.is_symlink():
                if not _inside(full, root):
                    issues.append(
                        ParseIssue(prefix + d, "symlink to a folder outside the imported root")
                    )
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(suffixes):
                continue
            full = here / name
            if full.is_symlink():
                if _inside(full, root):
                    links.append((full, prefix + name, full.resolve()))
                else:
                    issues.append(
                        ParseIssue(prefix + name, "symlink to a file outside the imported root")
                    )
                continue
            out.append((full, prefix + name))
    seen = {path for path, _ in out}
    for full, rel, target in links:
        if target not in seen:
            seen.add(target)
            out.append((full, rel))
    return out


def _inside(link: Path, root: Path) -> bool:
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # symlink loop
        return False


def _read_text(path: Path, rel: str, issues: list[ParseIssue]) -> str | None:
    """The file's text, or ``None`` after recording why it cannot be used."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            issues.append(ParseIssue(rel, "not a regular file"))
            return None
        if st.st_size > MAX_FILE_BYTES:
            issues.append(ParseIssue(rel, f"skipped: {st.st_size} bytes, over the 5 MB limit"))
            return None
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        issues.append(ParseIssue(rel, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_FILE_BYTES:
        issues.append(ParseIssue(rel, "skipped: over the 5 MB limit"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(
            ParseIssue(
                rel,
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            )
        )
        return None
    if "\x00" in text:
        issues.append(ParseIssue(rel, "binary file (contains NUL bytes)"))
        return None
    if not text.strip():
        issues.append(ParseIssue(rel, "empty file"))
        return None
    return text


# --------------------------------------------------------------------------- YAML


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
        return _one_line(f"{exc.problem or exc.context or 'syntax error'}{where}")
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return _one_line(str(exc) or type(exc).__name__)


def _load_yaml(
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
            issues.append(ParseIssue(rel, f"{where} is a {_type_name(doc)}, not a mapping"))
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


def _new(fmt: str, root: Path) -> ParsedInventory:
    return ParsedInventory(format=fmt, root=str(root))


def _finish(
    inv: ParsedInventory, ignored: set[str], skips: _Skips | None = None
) -> ParsedInventory:
    inv.ignored_ids = sorted(ignored)
    if skips is not None:
        inv.notes.extend(skips.notes())
    files_by_id: dict[str, list[str]] = {}
    for rule in inv.rules:
        files_by_id.setdefault(rule.rule_id, []).append(rule.file)
    for rule_id, files in files_by_id.items():
        if len(files) > 1:
            shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
            inv.notes.append(f"rule id {rule_id} is used by {len(files)} rules: {shown}")
    return inv


def _merge_by_id(inv: ParsedInventory, what: str) -> None:
    """Merge rules sharing a ``rule_id`` (union of techniques and raw tags, first name wins)."""
    merged: dict[str, Rule] = {}
    # Sets beside the lists: merging stays linear however many rules repeat an id.
    techniques: dict[str, set[str]] = {}
    tags: dict[str, set[str]] = {}
    dupes = 0
    for rule in inv.rules:
        first = merged.get(rule.rule_id)
        if first is None:
            merged[rule.rule_id] = rule
            continue
        if rule.rule_id not in tags:
            techniques[rule.rule_id] = set(first.techniques)
            tags[rule.rule_id] = set(first.raw_tags)
        dupes += 1
        techniques[rule.rule_id].update(rule.techniques)
        seen = tags[rule.rule_id]
        for t in rule.raw_tags:
            if t not in seen:
                seen.add(t)
                first.raw_tags.append(t)
    for rule_id, ids in techniques.items():
        merged[rule_id].techniques = sorted(ids)
    if dupes:
        inv.notes.append(f"merged {dupes} {what} repeating an earlier id")
    inv.rules = list(merged.values())


# --------------------------------------------------------------------------- Sigma

_SIGMA_STATUS = {
    "stable": ACTIVE,
    "test": TEST,
    "experimental": EXPERIMENTAL,
    "deprecated": DEPRECATED,
    "unsupported": UNSUPPORTED,
}
_SIGMA_KEYS = frozenset({"title", "id", "status", "tags"})
_SIGMA_TECHNIQUE_TAG = re.compile(r"attack\.t\d", re.IGNORECASE | re.ASCII)


def parse_sigma(root: Path) -> ParsedInventory:
    """Parse Sigma rules (``*.yml``/``*.yaml``) from a folder, recursively, or one file.

    Each YAML document with a ``title`` is a rule (multi-document files: a titled document
    without an ``id`` borrows the file's only other ``id`` when it is the file's only rule).
    Techniques come from ``tags`` in the ``attack.`` namespace (``attack.t1059.001``); tactic,
    group and software tags stay in ``raw_tags`` only. Status comes from ``status``, overridden
    by a ``deprecated/`` or ``unsupported/`` folder.
    """
    root = _check_input(root, file_only=False)
    inv = _new("sigma", root)
    ignored: set[str] = set()
    for path, rel in _walk(root, (".yml", ".yaml"), inv.issues):
        text = _read_text(path, rel, inv.issues)
        if text is None:
            continue
        docs = _load_yaml(text, rel, inv.issues, _SIGMA_KEYS)
        if docs is None:
            continue
        titled = [(i, d) for i, d in docs if _scalar_str(d.get("title"))]
        if not titled:
            if docs:
                inv.issues.append(ParseIssue(rel, "no document with a title: not a Sigma rule"))
            continue
        ids = [s.strip() for _, d in docs if (s := _scalar_str(d.get("id"))) and s.strip()]
        parts = _dir_parts(root, rel)
        for i, doc in titled:
            rule_id = (_scalar_str(doc.get("id")) or "").strip()
            if not rule_id:
                rule_id = ids[0] if len(titled) == 1 and len(ids) == 1 else f"{rel}#{i}"
            raw_status = (_scalar_str(doc.get("status")) or "").strip()
            status = _SIGMA_STATUS.get(raw_status.lower(), UNKNOWN)
            if "deprecated" in parts or status == DEPRECATED:
                status = DEPRECATED
            elif "unsupported" in parts:
                status = UNSUPPORTED
            techniques = _Techniques(ignored)
            raw_tags = []
            for tag in _as_list(doc.get("tags")):
                text_tag = _scalar_str(tag)
                if text_tag is None:
                    continue
                raw_tags.append(text_tag)
                if _SIGMA_TECHNIQUE_TAG.match(text_tag.strip()):
                    techniques.add(text_tag, keep_raw=False)
            inv.rules.append(
                Rule(
                    name=_one_line(_scalar_str(doc["title"]) or "", 500),
                    rule_id=rule_id.strip(),
                    file=rel,
                    status=status,
                    techniques=techniques.sorted(),
                    raw_tags=raw_tags,
                    format="sigma",
                    raw_status=raw_status,
                )
            )
    return _finish(inv, ignored)


# --------------------------------------------------------------------------- Elastic

_ELASTIC_MATURITY = {
    "production": ACTIVE,
    "development": EXPERIMENTAL,
    "deprecated": DEPRECATED,
}


def _toml_reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return _one_line(str(exc) or type(exc).__name__)


def parse_elastic(root: Path) -> ParsedInventory:
    """Parse Elastic detection rules (TOML) from a folder, recursively, or one file.

    ``[rule]`` files: id ``rule.rule_id``, name ``rule.name``; techniques from every
    ``[[rule.threat]]`` block's ``technique[].id`` and ``technique[].subtechnique[].id``
    (repeated across per-tactic blocks: de-duplicated). Status: ``rules/_deprecated/`` or
    maturity ``deprecated`` -> deprecated; ``building_block_type`` or ``rules_building_block/``
    -> building_block; else maturity (production -> active, development -> experimental).

    ``[hunt]`` files (the ``hunting/`` queries): id ``hunt.uuid``, techniques from the flat
    ``hunt.mitre`` list (ATLAS ids there go to ``ignored_ids``), status ``hunting``.
    """
    root = _check_input(root, file_only=False)
    inv = _new("elastic", root)
    ignored: set[str] = set()
    for path, rel in _walk(root, (".toml",), inv.issues):
        text = _read_text(path, rel, inv.issues)
        if text is None:
            continue
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            inv.issues.append(ParseIssue(rel, f"invalid TOML: {_toml_reason(exc)}"))
            continue
        if isinstance(data.get("rule"), dict):
            rule = _elastic_rule(data, root, rel, ignored, inv.issues)
        elif isinstance(data.get("hunt"), dict):
            rule = _elastic_hunt(data["hunt"], rel, ignored, inv.issues)
        else:
            inv.issues.append(ParseIssue(rel, "not an Elastic rule: no [rule] or [hunt] table"))
            continue
        if rule is not None:
            inv.rules.append(rule)
    return _finish(inv, ignored)


def _elastic_rule(
    data: dict, root: Path, rel: str, ignored: set[str], issues: list[ParseIssue]
) -> Rule | None:
    rule: dict = data["rule"]
    meta: dict = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    name = _scalar_str(rule.get("name"))
    if not name:
        issues.append(ParseIssue(rel, "Elastic rule without rule.name"))
        return None
    raw_status = (_scalar_str(meta.get("maturity")) or "").strip()
    status = _ELASTIC_MATURITY.get(raw_status.lower(), UNKNOWN)
    parts = _dir_parts(root, rel)
    if "_deprecated" in parts or status == DEPRECATED:
        status = DEPRECATED
    elif rule.get("building_block_type") or "rules_building_block" in parts:
        status = BUILDING_BLOCK
    techniques = _Techniques(ignored)
    raw: dict[str, None] = {}  # an ordered set
    for threat in _as_list(rule.get("threat")):
        if not isinstance(threat, dict):
            continue
        tactic = threat.get("tactic")
        tid = _scalar_str(tactic.get("id")) if isinstance(tactic, dict) else None
        if tid:
            raw.setdefault(tid)
        for tech in _as_list(threat.get("technique")):
            if not isinstance(tech, dict):
                continue
            techniques.add(tech.get("id"))
            for sub in _as_list(tech.get("subtechnique")):
                if isinstance(sub, dict):
                    techniques.add(sub.get("id"))
    raw.update(dict.fromkeys(techniques.raw))
    return Rule(
        name=_one_line(name, 500),
        rule_id=_id_or(rule.get("rule_id"), rel),
        file=rel,
        status=status,
        techniques=techniques.sorted(),
        raw_tags=list(raw),
        format="elastic",
        raw_status=raw_status,
    )


def _elastic_hunt(hunt: dict, rel: str, ignored: set[str], issues: list[ParseIssue]) -> Rule | None:
    name = _scalar_str(hunt.get("name"))
    if not name:
        issues.append(ParseIssue(rel, "Elastic hunting query without hunt.name"))
        return None
    techniques = _Techniques(ignored)
    techniques.add_all(hunt.get("mitre"))
    return Rule(
        name=_one_line(name, 500),
        rule_id=_id_or(hunt.get("uuid"), rel),
        file=rel,
        status=HUNTING,
        techniques=techniques.sorted(),
        raw_tags=techniques.raw,
        format="elastic",
    )


# --------------------------------------------------------------------------- Splunk

_SPLUNK_STATUS = {
    "production": ACTIVE,
    "experimental": EXPERIMENTAL,
    "validation": TEST,
    "deprecated": DEPRECATED,
    "removed": DEPRECATED,
}
_SPLUNK_NOT_DETECTIONS = {"baseline", "investigation"}
_SPLUNK_KEYS = frozenset({"name", "id", "status", "type", "search", "tags", "mitre_attack_id"})


def parse_splunk(root: Path) -> ParsedInventory:
    """Parse Splunk Security Content detections (YAML) from a folder, recursively, or one file.

    A detection is a mapping with ``name`` and ``search`` (types ``Baseline`` and
    ``Investigation`` are skipped, as are stories, macros, lookups...: listed in ``notes``).
    Techniques from ``tags.mitre_attack_id`` and, in the newer schema, a top-level
    ``mitre_attack_id``. Status: production -> active, experimental, validation -> test,
    deprecated/removed (or a ``deprecated/``/``removed/`` folder) -> deprecated.
    """
    root = _check_input(root, file_only=False)
    inv = _new("splunk", root)
    ignored: set[str] = set()
    skips = _Skips()
    for path, rel in _walk(root, (".yml", ".yaml"), inv.issues):
        text = _read_text(path, rel, inv.issues)
        if text is None:
            continue
        docs = _load_yaml(text, rel, inv.issues, _SPLUNK_KEYS)
        if docs is None:
            continue
        parts = _dir_parts(root, rel)
        for i, doc in docs:
            name = _scalar_str(doc.get("name"))
            if not name or "search" not in doc:
                skips.add("YAML documents that are not detections (no name/search)", rel)
                continue
            kind = (_scalar_str(doc.get("type")) or "").strip()
            if kind.lower() in _SPLUNK_NOT_DETECTIONS:
                skips.add(f"{kind} searches (not detections)", rel)
                continue
            raw_status = (_scalar_str(doc.get("status")) or "").strip()
            status = _SPLUNK_STATUS.get(raw_status.lower(), UNKNOWN)
            if parts & {"deprecated", "removed"}:
                status = DEPRECATED
            techniques = _Techniques(ignored)
            tags = doc.get("tags")
            if isinstance(tags, dict):
                techniques.add_all(tags.get("mitre_attack_id"))
            techniques.add_all(doc.get("mitre_attack_id"))
            rule_id = (_scalar_str(doc.get("id")) or "").strip()
            rule_id = rule_id or (rel if len(docs) == 1 else f"{rel}#{i}")
            inv.rules.append(
                Rule(
                    name=_one_line(name, 500),
                    rule_id=rule_id,
                    file=rel,
                    status=status,
                    techniques=techniques.sorted(),
                    raw_tags=techniques.raw,
                    format="splunk",
                    raw_status=raw_status,
                )
            )
    return _finish(inv, ignored, skips)


# --------------------------------------------------------------------------- Splunk ES

_ES_ENABLED = "action.correlationsearch.enabled"
_ES_ANNOTATIONS = "action.correlationsearch.annotations"
_ES_LABEL = "action.correlationsearch.label"


def parse_splunk_es(path: Path) -> ParsedInventory:
    """Parse a Splunk ES saved-search export (``| rest /services/saved/searches``).

    CSV (``outputcsv`` / "Export as CSV") or JSON: ``{"results": [...]}``, a plain list of rows,
    the REST API's ``{"entry": [{"name": ..., "content": {...}}]}`` or JSON lines of
    ``{"result": {...}}``. When the export has an ``action.correlationsearch.enabled`` column, only
    correlation searches are rules (the others are noted as skipped). Name: the correlation
    search label, else ``title``; id: ``title`` (rows repeated per search head are merged).
    Techniques: the ``mitre_attack`` list of the JSON in ``action.correlationsearch.annotations``.
    Status: ``disabled`` true -> disabled, else active.
    """
    path = _check_input(path, file_only=True)
    inv = _new("splunk-es", path)
    ignored: set[str] = set()
    rel = path.name
    text = _read_text(path, rel, inv.issues)
    if text is None:
        return _finish(inv, ignored)
    stripped = text.lstrip()
    if path.suffix.lower() in {".json", ".jsonl"} or stripped[:1] in {"{", "["}:
        rows = _es_json_rows(text, rel, inv.issues)
    else:
        rows = _csv_rows(text, rel, inv.issues)
    if rows is None:
        return _finish(inv, ignored)
    has_cs_column = any(_ES_ENABLED in row for row in rows)
    skips = _Skips()
    for n, row in enumerate(rows, 1):
        title = _scalar_str(row.get("title")) or _scalar_str(row.get("name"))
        if not title or not title.strip():
            inv.issues.append(ParseIssue(rel, f"row {n}: no title"))
            continue
        title = title.strip()
        if has_cs_column and not _truthy(row.get(_ES_ENABLED)):
            skips.add("saved searches that are not correlation searches", _one_line(title, 80))
            continue
        techniques = _Techniques(ignored)
        annotations = row.get(_ES_ANNOTATIONS)
        if isinstance(annotations, str) and annotations.strip():
            try:
                annotations = json.loads(annotations)
            except (json.JSONDecodeError, RecursionError) as exc:
                inv.issues.append(
                    ParseIssue(rel, _one_line(f"row {n} ({title}): annotations not JSON: {exc}"))
                )
                annotations = None
        if isinstance(annotations, dict):
            techniques.add_all(annotations.get("mitre_attack"))
        raw_disabled = _scalar_str(row.get("disabled"))
        if isinstance(row.get("disabled"), bool):
            raw_disabled = str(row["disabled"]).lower()
        label = _scalar_str(row.get(_ES_LABEL))
        inv.rules.append(
            Rule(
                name=_one_line(label if label and label.strip() else title, 500),
                rule_id=title,
                file=rel,
                status=DISABLED if _truthy(row.get("disabled")) else ACTIVE,
                techniques=techniques.sorted(),
                raw_tags=techniques.raw,
                format="splunk-es",
                raw_status=f"disabled={raw_disabled}" if raw_disabled is not None else "",
            )
        )
    _merge_by_id(inv, "rows")
    return _finish(inv, ignored, skips)


def _es_json_rows(text: str, rel: str, issues: list[ParseIssue]) -> list[dict] | None:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            issues.append(ParseIssue(rel, _one_line(f"invalid JSON: {exc}")))
            return None
        data = []  # JSON lines: one {"result": {...}} object per line
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as line_exc:
                issues.append(ParseIssue(rel, _one_line(f"invalid JSON on line {n}: {line_exc}")))
                return None
    except RecursionError:
        issues.append(ParseIssue(rel, "invalid JSON: nested too deeply"))
        return None
    if isinstance(data, dict):
        if isinstance(data.get("results"), list):
            data = data["results"]
        elif isinstance(data.get("entry"), list):
            data = [
                {
                    "title": e.get("name"),
                    **(e["content"] if isinstance(e.get("content"), dict) else {}),
                }
                for e in data["entry"]
                if isinstance(e, dict)
            ]
        elif isinstance(data.get("result"), dict):
            data = [data]
        else:
            issues.append(ParseIssue(rel, "JSON is not a saved-search export (no results/entry)"))
            return None
    if not isinstance(data, list):
        issues.append(ParseIssue(rel, f"JSON is a {_type_name(data)}, not a list of searches"))
        return None
    rows = []
    for n, item in enumerate(data, 1):
        if isinstance(item, dict) and isinstance(item.get("result"), dict):
            item = item["result"]
        if isinstance(item, dict):
            rows.append(item)
        else:
            issues.append(ParseIssue(rel, f"item {n} is a {_type_name(item)}, not an object"))
    return rows


# --------------------------------------------------------------------------- Sentinel

_SENTINEL_STATUS = {
    "available": ACTIVE,
    "installed": ACTIVE,
    "enabled": ACTIVE,
    "notavailable": UNSUPPORTED,
    "deprecated": DEPRECATED,
    "disabled": DISABLED,
}
_SENTINEL_RULE_KEYS = ("query", "relevantTechniques", "tactics", "kind", "queryFrequency")
_SENTINEL_KEYS = frozenset(
    {"id", "name", "status", "enabled", "techniques", "subTechniques", *_SENTINEL_RULE_KEYS}
)
_GUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def parse_sentinel(root: Path) -> ParsedInventory:
    """Parse Microsoft Sentinel analytic rules from a folder, recursively, or one file.

    YAML (the Azure-Sentinel repository format): a mapping with ``name`` and one of ``query``,
    ``relevantTechniques``, ``tactics``, ``kind``; id ``id``; techniques from
    ``relevantTechniques`` (and ``techniques``/``subTechniques`` if present). JSON: an ARM
    export whose ``resources`` include ``.../alertRules`` (or a single rule object with
    ``properties``); name ``properties.displayName``, techniques from ``properties.techniques``
    and ``properties.subTechniques``. Status: ``status`` Available/Installed -> active,
    NotAvailable -> unsupported; ``enabled: false`` -> disabled; a name starting
    ``[Deprecated]`` or a ``deprecated/`` folder -> deprecated.
    """
    root = _check_input(root, file_only=False)
    inv = _new("sentinel", root)
    ignored: set[str] = set()
    skips = _Skips()
    for path, rel in _walk(root, (".yml", ".yaml", ".json"), inv.issues):
        text = _read_text(path, rel, inv.issues)
        if text is None:
            continue
        if rel.lower().endswith(".json"):
            items = _sentinel_arm_items(text, rel, inv.issues)
        else:
            docs = _load_yaml(text, rel, inv.issues, _SENTINEL_KEYS)
            items = None if docs is None else [(f"{rel}#{i}", d) for i, d in docs]
        if items is None:
            continue
        if not items:
            skips.add("files without analytic rules", rel)
            continue
        parts = _dir_parts(root, rel)
        for fallback_id, item in items:
            rule = _sentinel_rule(item, rel, fallback_id, parts, ignored)
            if rule is None:
                skips.add("documents that are not analytic rules", rel)
            else:
                inv.rules.append(rule)
    return _finish(inv, ignored, skips)


def _sentinel_arm_items(text: str, rel: str, issues: list[ParseIssue]) -> list | None:
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        issues.append(ParseIssue(rel, _one_line(f"invalid JSON: {exc}")))
        return None
    if isinstance(data, dict) and isinstance(data.get("resources"), list):
        resources = data["resources"]
    elif isinstance(data, dict) and isinstance(data.get("value"), list):
        resources = data["value"]  # REST list response
    elif isinstance(data, list):
        resources = data
    elif isinstance(data, dict):
        resources = [data]
    else:
        issues.append(ParseIssue(rel, f"JSON is a {_type_name(data)}, not an ARM export"))
        return None
    items = []
    for n, res in enumerate(resources, 1):
        if not isinstance(res, dict) or not isinstance(res.get("properties"), dict):
            continue
        rtype = _scalar_str(res.get("type")) or ""
        if rtype and "alertrules" not in rtype.lower():
            continue
        props = dict(res["properties"])
        name_field = _scalar_str(res.get("name")) or ""
        guid = _GUID_RE.findall(name_field)
        props["id"] = guid[-1] if guid else name_field or f"{rel}#{n}"
        props["name"] = props.get("displayName")
        props.setdefault("kind", res.get("kind"))
        items.append((f"{rel}#{n}", props))
    return items


def _sentinel_rule(
    doc: dict, rel: str, fallback_id: str, parts: set[str], ignored: set[str]
) -> Rule | None:
    name = _scalar_str(doc.get("name"))
    if not name or not name.strip() or not any(k in doc for k in _SENTINEL_RULE_KEYS):
        return None
    raw_status = (_scalar_str(doc.get("status")) or "").strip()
    status = _SENTINEL_STATUS.get(raw_status.lower().replace(" ", ""), UNKNOWN)
    if _falsy(doc.get("enabled")):
        status = DISABLED
    elif status == UNKNOWN and _truthy(doc.get("enabled")):
        status = ACTIVE
    if name.strip().lower().startswith("[deprecated]") or "deprecated" in parts:
        status = DEPRECATED
    techniques = _Techniques(ignored)
    for key in ("relevantTechniques", "techniques", "subTechniques"):
        techniques.add_all(doc.get(key))
    tactics = [t for t in (_scalar_str(x) for x in _as_list(doc.get("tactics"))) if t]
    return Rule(
        name=_one_line(name, 500),
        rule_id=_id_or(doc.get("id"), fallback_id),
        file=rel,
        status=status,
        techniques=techniques.sorted(),
        raw_tags=list(dict.fromkeys([*techniques.raw, *tactics])),
        format="sentinel",
        raw_status=raw_status,
    )


# --------------------------------------------------------------------------- CSV / list

_CSV_TECHNIQUE_COLUMNS = (
    "technique",
    "techniqueid",
    "techniques",
    "techniqueids",
    "attackid",
    "attacktechnique",
    "attacktechniqueid",
    "attckid",  # "ATT&CK ID"
    "attcktechnique",
    "attcktechniqueid",
    "mitreattackid",
    "mitreattack",
    "mitretechnique",
    "mitretechniqueid",
    "mitreid",
    "ttp",
    "ttps",
)
_CSV_NAME_COLUMNS = ("rule", "rulename", "name", "title", "detection", "detectionname", "testname")
_CSV_ID_COLUMNS = ("id", "ruleid", "detectionid", "uuid", "guid", "testguid")
_CSV_STATUS_COLUMNS = ("status", "state", "maturity", "enabled")
_CSV_STATUS = {
    "active": ACTIVE,
    "enabled": ACTIVE,
    "production": ACTIVE,
    "prod": ACTIVE,
    "stable": ACTIVE,
    "deployed": ACTIVE,
    "available": ACTIVE,
    "test": TEST,
    "testing": TEST,
    "validation": TEST,
    "experimental": EXPERIMENTAL,
    "development": EXPERIMENTAL,
    "dev": EXPERIMENTAL,
    "beta": EXPERIMENTAL,
    "preview": EXPERIMENTAL,
    "draft": EXPERIMENTAL,
    "deprecated": DEPRECATED,
    "retired": DEPRECATED,
    "removed": DEPRECATED,
    "unsupported": UNSUPPORTED,
    "building_block": BUILDING_BLOCK,
    "disabled": DISABLED,
    "inactive": DISABLED,
    "hunting": HUNTING,
}
_CELL_SPLIT = re.compile(r"[,;|\s]+")


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _pick(columns: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    for cand in candidates:
        if cand in columns:
            return columns[cand]
    return None


def _csv_rows(text: str, rel: str, issues: list[ParseIssue]) -> list[dict] | None:
    """Rows of a CSV/TSV (delimiter guessed from the header line) as dicts."""
    header = text.lstrip().split("\n", 1)[0]
    delimiter = max(",;\t|", key=header.count)
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip()), delimiter=delimiter)
        return [row for row in reader]
    except csv.Error as exc:
        issues.append(ParseIssue(rel, _one_line(f"invalid CSV: {exc}")))
        return None


MAX_CSV_BYTES = 8 * 1024 * 1024 * 1024
"""A CSV inventory is read as a stream (never held whole): this only guards against a device
file or a runaway export."""

_NUL_ERROR = "binary file (contains NUL bytes)"


class _Nul(Exception):
    pass


def _lines(fh: Any) -> Iterator[str]:
    """The file's lines, refusing NUL bytes (a binary file)."""
    for line in fh:
        if "\x00" in line:
            raise _Nul
        yield line


def _skip_preamble(lines: Iterator[str]) -> str | None:
    """Drop leading blank and ``#`` comment lines; the first line that is neither."""
    for line in lines:
        if line.strip() and not line.startswith("#"):
            return line
    return None


def _decode_error(path: Path, exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8 (read again in bytes: only on this error path)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            pending = dec.getstate()[0]
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as e:
                data = pending + chunk
                at = offset - len(pending) + e.start
                return f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {at}"
            offset += len(chunk)
    return _one_line(f"not UTF-8 text: {exc.reason}")


@dataclass
class RuleStream:
    """An inventory read one rule at a time: iterate :attr:`rules` once; ``issues``,
    ``ignored_ids`` and ``notes`` are complete when the iteration is."""

    format: str
    root: str
    rules: Iterator[Rule]
    issues: list[ParseIssue] = field(default_factory=list)
    ignored_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, inv: ParsedInventory) -> RuleStream:
        """A parsed inventory as a stream."""
        return cls(inv.format, inv.root, iter(inv.rules), inv.issues, inv.ignored_ids, inv.notes)


def stream_csv(path: Path) -> RuleStream:
    """:func:`parse_csv` as a stream: the file is read twice (the first pass checks it and
    finds rule ids used by several rows, the second yields rules), never held whole, so an
    inventory of millions of rows is read in constant memory; rows repeating an id are merged
    as :func:`parse_csv` does and come last."""
    path = _check_input(path, file_only=True)
    stream = RuleStream("csv", str(path), iter(()))
    rel = path.name
    try:
        st = path.stat()
    except OSError as exc:
        stream.issues.append(ParseIssue(rel, f"cannot read: {exc.strerror or exc}"))
        return stream
    if not stat.S_ISREG(st.st_mode):
        stream.issues.append(ParseIssue(rel, "not a regular file"))
        return stream
    if st.st_size > MAX_CSV_BYTES:
        stream.issues.append(ParseIssue(rel, f"skipped: {st.st_size} bytes, over the 8 GB limit"))
        return stream
    layout = _csv_first_pass(path, rel, stream.issues)
    if layout is not None:
        stream.rules = _csv_rules(path, rel, layout, stream)
    return stream


@dataclass
class _CsvLayout:
    delimiter: str
    tech: int | None
    """Column index of the technique ids; None: a plain list of ids."""
    name: int | None = None
    rule_id: int | None = None
    status: int | None = None
    enabled: bool = False
    """The status column is an ``enabled`` flag."""
    repeated: frozenset[int] = frozenset()
    """Hashes of the rule ids more than one row uses."""

    def cell(self, row: list[str], index: int | None) -> str:
        if index is None or index >= len(row):
            return ""
        return row[index].strip()

    def rule_id_of(self, row: list[str], n: int) -> str:
        return self.cell(row, self.rule_id) or self.cell(row, self.name) or f"row {n}"


def _open_text(path: Path) -> Any:
    return path.open("r", encoding="utf-8-sig", newline="")


def _column(fields: list[str], columns: dict[str, str], candidates: tuple[str, ...]) -> int | None:
    """Index of the first candidate column (the last column of that name, as a dict keeps)."""
    name = _pick(columns, candidates)
    if name is None:
        return None
    return max(i for i, f in enumerate(fields) if f == name)


def _csv_first_pass(path: Path, rel: str, issues: list[ParseIssue]) -> _CsvLayout | None:
    """Check the whole file (UTF-8, no NUL, valid CSV), read its header, and find the rule
    ids used by several rows. None (with an issue) when it cannot be used."""
    try:
        with _open_text(path) as fh:
            lines = _lines(fh)
            first = _skip_preamble(lines)
            if first is None:
                issues.append(ParseIssue(rel, "empty file"))
                return None
            header = first.rstrip("\r\n")
            delimiter = max(",;\t|", key=header.count)
            reader = csv.reader(_chain(first, lines), delimiter=delimiter)
            fields = next(reader, [])
            columns = {_header_key(h): h for h in fields}
            tech = _column(fields, columns, _CSV_TECHNIQUE_COLUMNS)
            if tech is None:
                if any(c in header.strip().rstrip(",;") for c in ",;\t|"):
                    issues.append(
                        ParseIssue(
                            rel,
                            _one_line(
                                f"no technique column (technique, technique_id, ...) in: {header}"
                            ),
                        )
                    )
                    return None
                for _ in lines:  # a plain list: only check the rest of the file
                    pass
                return _CsvLayout(delimiter, None)
            status = _column(fields, columns, _CSV_STATUS_COLUMNS)
            layout = _CsvLayout(
                delimiter,
                tech,
                _column(fields, columns, _CSV_NAME_COLUMNS),
                _column(fields, columns, _CSV_ID_COLUMNS),
                status,
                status is not None and _header_key(fields[status]) == "enabled",
            )
            hashes = array("q")
            n = 1
            for row in reader:
                if row:
                    n += 1
                    hashes.append(hash(layout.rule_id_of(row, n)))
    except _Nul:
        issues.append(ParseIssue(rel, _NUL_ERROR))
        return None
    except UnicodeDecodeError as exc:
        issues.append(ParseIssue(rel, _decode_error(path, exc)))
        return None
    except csv.Error as exc:
        issues.append(ParseIssue(rel, _one_line(f"invalid CSV: {exc}")))
        return None
    except OSError as exc:
        issues.append(ParseIssue(rel, f"cannot read: {exc.strerror or exc}"))
        return None
    layout.repeated = _repeated(hashes)
    return layout


def _repeated(hashes: array) -> frozenset[int]:
    """The values that occur more than once (sorted in place: 8 bytes a row)."""
    import numpy as np

    if len(hashes) < 2:
        return frozenset()
    values = np.frombuffer(hashes, dtype=np.int64).copy()
    values.sort()
    dup = values[1:][values[1:] == values[:-1]]
    return frozenset(int(v) for v in np.unique(dup))


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first.lstrip()
    yield from rest


def _csv_rules(path: Path, rel: str, layout: _CsvLayout, stream: RuleStream) -> Iterator[Rule]:
    ignored: set[str] = set()
    try:
        with _open_text(path) as fh:
            lines = _lines(fh)
            first = _skip_preamble(lines) or ""
            if layout.tech is None:
                yield from _plain_list(_chain(first, lines), rel, ignored)
            else:
                reader = csv.reader(_chain(first, lines), delimiter=layout.delimiter)
                next(reader, None)
                yield from _csv_table(reader, rel, layout, ignored, stream.notes)
    finally:
        stream.ignored_ids = sorted(ignored)


def _csv_table(
    reader: Iterator[list[str]],
    rel: str,
    layout: _CsvLayout,
    ignored: set[str],
    notes: list[str],
) -> Iterator[Rule]:
    held: dict[str, Rule] = {}  # rules whose id other rows use too: merged, yielded last
    held_ids: dict[str, set[str]] = {}
    held_raw: dict[str, dict[str, None]] = {}
    dupes = 0
    known: dict[str, str | None] = {}  # token -> technique id (a few thousand distinct tokens)
    cell = layout.cell
    n = 1
    for row in reader:
        if not row:
            continue
        n += 1
        if not any(c.strip() for c in row):
            continue
        ids: set[str] = set()
        raw_seen: dict[str, None] = {}  # an ordered set: a cell of many ids stays linear
        for token in _CELL_SPLIT.split(cell(row, layout.tech)):
            if token in known:
                tid = known[token]
            else:
                tid = known[token] = normalize_technique_id(token)
            if tid is not None:
                ids.add(tid)
                raw_seen.setdefault(token)
            elif any(c.isdigit() for c in token):
                # an id-like reject; plain words next to ids ("T1059.001 PowerShell") are dropped
                ignored.add(_one_line(token, 80))
        name = cell(row, layout.name)
        rule_id = layout.rule_id_of(row, n)
        raw_status = cell(row, layout.status)
        if layout.status is None:
            status = ACTIVE
        elif layout.enabled:
            status = ACTIVE if _truthy(raw_status) else DISABLED if _falsy(raw_status) else UNKNOWN
        else:
            status = _CSV_STATUS.get(raw_status.lower().replace(" ", "_"), UNKNOWN)
        rule = Rule(
            name=_one_line(name or rule_id, 500),
            rule_id=rule_id,
            file=rel,
            status=status,
            techniques=sorted(ids),
            raw_tags=list(raw_seen),
            format="csv",
            raw_status=raw_status,
        )
        if hash(rule_id) not in layout.repeated:
            yield rule
            continue
        first_rule = held.get(rule_id)
        if first_rule is None:
            held[rule_id] = rule
            # merged as sets, ordered once at the end: a rule repeated on many rows stays linear
            held_ids[rule_id] = set(rule.techniques)
            held_raw[rule_id] = dict.fromkeys(rule.raw_tags)
            continue
        dupes += 1
        held_ids[rule_id].update(rule.techniques)
        for t in rule.raw_tags:
            held_raw[rule_id].setdefault(t)
    for rule_id, first_rule in held.items():
        first_rule.techniques = sorted(held_ids[rule_id])
        first_rule.raw_tags = list(held_raw[rule_id])
    yield from held.values()
    if dupes:
        notes.append(f"merged {dupes} rows repeating an earlier id")


def parse_csv(path: Path) -> ParsedInventory:
    """Parse a plain CSV/TSV inventory, or a plain list of technique ids (one per line).

    CSV: the header must name a technique column (matched ignoring case and punctuation:
    ``technique``, ``technique_id``, ``attack_id``, ``Technique #``, ``mitre_attack_id``,
    ``ttp``...); optional name (``rule``, ``name``, ``title``, ``Test Name``...), id (``id``,
    ``rule_id``, ``Test GUID``...) and status (``status``, ``state``, ``maturity``, ``enabled``)
    columns. A technique cell may hold several ids separated by ``, ; |`` or spaces. Rows with the
    same id (or, without an id column, the same name) are merged. Without a status column
    rules are ``active``.

    Plain list: no recognised header; every non-blank line not starting with ``#`` is an id; one
    ``active`` rule per distinct technique. Unrecognised values go to ``ignored_ids``.

    The whole inventory in memory; :func:`stream_csv` reads the same rules one at a time.
    """
    stream = stream_csv(path)
    inv = _new("csv", Path(stream.root))
    inv.rules = list(stream.rules)
    inv.issues, inv.ignored_ids, inv.notes = stream.issues, stream.ignored_ids, stream.notes
    return inv


def _plain_list(lines: Iterator[str], rel: str, ignored: set[str]) -> Iterator[Rule]:
    stem = rel.rsplit(".", 1)[0]
    seen: dict[str, dict[str, None]] = {}  # id -> the spellings seen (an ordered set)
    for line in lines:
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        value = value.rstrip(",;")
        tid = normalize_technique_id(value)
        if tid is None:
            ignored.add(_one_line(value, 80))
        else:
            seen.setdefault(tid, {}).setdefault(value)
    for tid in sorted(seen):
        yield Rule(
            name=f"{stem}: {tid}",
            rule_id=tid,
            file=rel,
            status=ACTIVE,
            techniques=[tid],
            raw_tags=list(seen[tid]),
            format="csv",
        )


# --------------------------------------------------------------------------- Navigator layer


def _score(entry: dict) -> float | None:
    value = entry.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_layer(path: Path) -> ParsedInventory:
    """Parse an ATT&CK Navigator layer (4.x; older layers with the same ``techniques`` list too).

    A technique entry counts as covered when it is not ``enabled: false`` and, if any entry of
    the layer has a numeric score, its score is > 0; if no entry has a score, when it has a
    ``color`` or a ``comment``. One ``active`` rule per covered technique (entries repeated
    across tactics merged), named ``"<layer name>: <id>"``, id the technique id.
    """
    path = _check_input(path, file_only=True)
    inv = _new("layer", path)
    ignored: set[str] = set()
    rel = path.name
    text = _read_text(path, rel, inv.issues)
    if text is None:
        return _finish(inv, ignored)
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        inv.issues.append(ParseIssue(rel, _one_line(f"invalid JSON: {exc}")))
        return _finish(inv, ignored)
    if not isinstance(data, dict) or not isinstance(data.get("techniques"), list):
        inv.issues.append(ParseIssue(rel, "not a Navigator layer: no 'techniques' list"))
        return _finish(inv, ignored)
    layer_name = _one_line(_scalar_str(data.get("name")) or rel.rsplit(".", 1)[0], 200)
    entries = [e for e in data["techniques"] if isinstance(e, dict)]
    if len(entries) != len(data["techniques"]):
        inv.issues.append(ParseIssue(rel, "some technique entries are not objects: ignored"))
    scored = any(_score(e) is not None for e in entries)
    covered: dict[str, dict[str, None]] = {}  # id -> its tags (an ordered set)
    disabled = 0
    for entry in entries:
        raw = _scalar_str(entry.get("techniqueID"))
        if raw is None or not raw.strip():
            continue
        if entry.get("enabled") is False:
            disabled += 1
            continue
        if scored:
            score = _score(entry)
            hit = score is not None and score > 0
        else:
            hit = bool(_scalar_str(entry.get("color")) or _scalar_str(entry.get("comment")))
        if not hit:
            continue
        tid = normalize_technique_id(raw)
        if tid is None:
            ignored.add(_one_line(raw.strip(), 80))
            continue
        tags = covered.setdefault(tid, {})
        for tag in (raw.strip(), _scalar_str(entry.get("tactic"))):
            if tag:
                tags.setdefault(tag)
    if disabled:
        inv.notes.append(f"{disabled} technique entries are disabled (enabled: false): not counted")
    for tid in sorted(covered):
        inv.rules.append(
            Rule(
                name=f"{layer_name}: {tid}",
                rule_id=tid,
                file=rel,
                status=ACTIVE,
                techniques=[tid],
                raw_tags=list(covered[tid]),
                format="layer",
            )
        )
    return _finish(inv, ignored)


# --------------------------------------------------------------------------- registry, summary

PARSERS: dict[str, Callable[[Path], ParsedInventory]] = {
    "sigma": parse_sigma,
    "elastic": parse_elastic,
    "splunk": parse_splunk,
    "splunk-es": parse_splunk_es,
    "sentinel": parse_sentinel,
    "csv": parse_csv,
    "layer": parse_layer,
}
"""Inventory format name -> parser."""


def parse_inventory(fmt: str, path: Path | str) -> ParsedInventory:
    """Parse ``path`` with the ``fmt`` parser; :class:`InvalidInput` for an unknown format."""
    parser = PARSERS.get(fmt.strip().lower())
    if parser is None:
        raise InvalidInput(
            f"unknown inventory format: {_one_line(fmt, 60)}", suggestions=sorted(PARSERS)
        )
    return parser(Path(path))


def stream_inventory(fmt: str, path: Path | str) -> RuleStream:
    """:func:`parse_inventory` one rule at a time: CSV inventories are streamed from the file
    (:func:`stream_csv`); the other formats are parsed whole, then handed out."""
    key = fmt.strip().lower()
    if key == "csv":
        return stream_csv(Path(path))
    return RuleStream.of(parse_inventory(fmt, path))


def summarize(inv: ParsedInventory) -> dict[str, Any]:
    """Counts for the import report.

    Keys: ``format``, ``root``, ``rules`` (read), ``with_techniques``, ``unmapped`` (no
    technique), ``techniques`` (distinct ids), ``by_status`` (status -> rules, every status in
    :data:`STATUSES` that occurs), ``parse_issues`` (count), ``issues`` (list of
    ``{"file", "message"}``), ``ignored_ids``, ``notes``.
    """
    mapped = sum(1 for r in inv.rules if r.techniques)
    return {
        "format": inv.format,
        "root": inv.root,
        "rules": len(inv.rules),
        "with_techniques": mapped,
        "unmapped": len(inv.rules) - mapped,
        "techniques": len({t for r in inv.rules for t in r.techniques}),
        "by_status": dict(sorted(Counter(r.status for r in inv.rules).items())),
        "parse_issues": len(inv.issues),
        "issues": [{"file": i.file, "message": i.message} for i in inv.issues],
        "ignored_ids": list(inv.ignored_ids),
        "notes": list(inv.notes),
    }
