"""Writes the two example Navigator layers (run from the repository root):

    python examples/make_layers.py ../shared/corpora/atomic-red-team

- ``art.json``: the Enterprise techniques that have Atomic Red Team tests for Windows, score =
  the number of such tests (read from the atomics' YAML files);
- ``red-team.json``: what a (made-up) red-team exercise did, score 1 for each technique.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from queries.layers import build_layer, dump_layer

HERE = Path(__file__).resolve().parent
RED_TEAM = [  # a phishing-led intrusion into a Windows domain, in the order it happened
    "T1566.001", "T1204.002", "T1059.001", "T1105", "T1053.005", "T1547.001", "T1003.001",
    "T1087.002", "T1018", "T1021.001", "T1021.002", "T1560.001", "T1041", "T1070.004",
]  # fmt: skip


def atomic_counts(atomics: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in sorted(atomics.glob("T*/T*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tests = [
            t
            for t in doc.get("atomic_tests") or []
            if "windows" in t.get("supported_platforms", [])
        ]
        if tests:
            counts[str(doc["attack_technique"]).strip()] = len(tests)
    return counts


def main(art_root: str) -> None:
    counts = atomic_counts(Path(art_root) / "atomics")
    art = build_layer(
        [{"technique_id": t, "score": n} for t, n in sorted(counts.items())],
        name="Atomic Red Team tests (Windows)",
        attack_version="18.1",
        description="Techniques with Atomic Red Team tests for Windows; score = number of tests.",
        platforms=["Windows"],
    )
    (HERE / "art.json").write_text(dump_layer(art) + "\n", encoding="utf-8")
    red = build_layer(
        [
            {"technique_id": t, "score": 1, "comment": f"step {i}"}
            for i, t in enumerate(RED_TEAM, 1)
        ],
        name="Red team exercise 2026-10",
        attack_version="18.1",
        description="What the October red-team exercise did, step by step.",
        platforms=["Windows"],
    )
    (HERE / "red-team.json").write_text(dump_layer(red) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
