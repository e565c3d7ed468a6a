"""The inventory data model: statuses, rules, parse issues, a parsed inventory and its stream,
and the helpers every parser finishes an inventory with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
# its parent (inventory options; loader.inventory.planner applies them).
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


# --------------------------------------------------------------------------- finishing one


class Skips:
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


def new_inventory(fmt: str, root: Path) -> ParsedInventory:
    """An empty inventory of format ``fmt`` read from ``root``."""
    return ParsedInventory(format=fmt, root=str(root))


def finish_inventory(
    inv: ParsedInventory, ignored: set[str], skips: Skips | None = None
) -> ParsedInventory:
    """Complete a parser's inventory: the ignored ids sorted, the skipped files as notes, and a
    note for each rule id several rules use."""
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
