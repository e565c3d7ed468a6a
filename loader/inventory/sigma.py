"""Sigma rules (SigmaHQ YAML)."""

from __future__ import annotations

import re
from pathlib import Path

from .files import check_input, dir_parts, read_text, walk_files
from .model import (
    ACTIVE,
    DEPRECATED,
    EXPERIMENTAL,
    TEST,
    UNKNOWN,
    UNSUPPORTED,
    ParsedInventory,
    ParseIssue,
    Rule,
    finish_inventory,
    new_inventory,
)
from .techniques import Techniques
from .values import as_list, one_line, scalar_str
from .yaml_docs import load_yaml

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
    root = check_input(root, file_only=False)
    inv = new_inventory("sigma", root)
    ignored: set[str] = set()
    for path, rel in walk_files(root, (".yml", ".yaml"), inv.issues):
        text = read_text(path, rel, inv.issues)
        if text is None:
            continue
        docs = load_yaml(text, rel, inv.issues, _SIGMA_KEYS)
        if docs is None:
            continue
        titled = [(i, d) for i, d in docs if scalar_str(d.get("title"))]
        if not titled:
            if docs:
                inv.issues.append(ParseIssue(rel, "no document with a title: not a Sigma rule"))
            continue
        ids = [s.strip() for _, d in docs if (s := scalar_str(d.get("id"))) and s.strip()]
        parts = dir_parts(root, rel)
        for i, doc in titled:
            rule_id = (scalar_str(doc.get("id")) or "").strip()
            if not rule_id:
                rule_id = ids[0] if len(titled) == 1 and len(ids) == 1 else f"{rel}#{i}"
            raw_status = (scalar_str(doc.get("status")) or "").strip()
            status = _SIGMA_STATUS.get(raw_status.lower(), UNKNOWN)
            if "deprecated" in parts or status == DEPRECATED:
                status = DEPRECATED
            elif "unsupported" in parts:
                status = UNSUPPORTED
            techniques = Techniques(ignored)
            raw_tags = []
            for tag in as_list(doc.get("tags")):
                text_tag = scalar_str(tag)
                if text_tag is None:
                    continue
                raw_tags.append(text_tag)
                if _SIGMA_TECHNIQUE_TAG.match(text_tag.strip()):
                    techniques.add(text_tag, keep_raw=False)
            inv.rules.append(
                Rule(
                    name=one_line(scalar_str(doc["title"]) or "", 500),
                    rule_id=rule_id.strip(),
                    file=rel,
                    status=status,
                    techniques=techniques.sorted(),
                    raw_tags=raw_tags,
                    format="sigma",
                    raw_status=raw_status,
                )
            )
    return finish_inventory(inv, ignored)
