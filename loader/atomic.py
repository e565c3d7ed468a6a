"""Atomic Red Team's test index, read for emulation plans.

The index (``atomics/Indexes/Indexes-CSV/index.csv``) lists every test once per tactic of its
technique (columns ``Tactic, Technique #, Technique Name, Test #, Test Name, Test GUID, Executor
Name``): tests are keyed on their GUID here so a test in two tactics is one test. Platforms come
from the per-technique YAML (``atomics/T1059.001/T1059.001.yaml``: ``atomic_tests[n]``
``supported_platforms``; the test number is the test's 1-based position there), read only for the
techniques asked about; when a YAML file is missing or unreadable, from the per-platform index
CSVs (``windows-index.csv``...).

Atomic Red Team follows the newest ATT&CK (v19 ids such as T1685), its names are its own display
names, and its platform names are its own (``windows``, ``iaas:aws``...): :data:`PLATFORMS` maps
them to ATT&CK's, and :func:`platform_matches` compares either spelling.

Pure functions over files, no database.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from queries.errors import InvalidInput

INDEX_CSV = Path("atomics") / "Indexes" / "Indexes-CSV" / "index.csv"

PLATFORMS: dict[str, str] = {
    "windows": "Windows",
    "linux": "Linux",
    "macos": "macOS",
    "office-365": "Office Suite",
    "azure-ad": "Identity Provider",
    "google-workspace": "SaaS",
    "saas": "SaaS",
    "iaas": "IaaS",
    "iaas:aws": "IaaS",
    "iaas:azure": "IaaS",
    "iaas:gcp": "IaaS",
    "containers": "Containers",
    "esxi": "ESXi",
    "network": "Network Devices",
}
"""Atomic Red Team platform name -> ATT&CK platform name."""

_PLATFORM_CSVS = {
    "windows-index.csv": "windows",
    "linux-index.csv": "linux",
    "macos-index.csv": "macos",
    "office-365-index.csv": "office-365",
    "azure-ad-index.csv": "azure-ad",
    "google-workspace-index.csv": "google-workspace",
    "iaas-index.csv": "iaas",
    "containers-index.csv": "containers",
    "esxi-index.csv": "esxi",
}
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
_MAX_INDEX_BYTES = 50 * 1024 * 1024
_MAX_YAML_BYTES = 5 * 1024 * 1024


@dataclass
class AtomicTest:
    """One Atomic test (a GUID), with where it sits in its technique's YAML."""

    technique_id: str
    technique_name: str
    test_number: int
    name: str
    guid: str
    executor: str
    tactics: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    """Atomic Red Team's own platform names (``windows``, ``iaas:aws``...)."""


@dataclass
class AtomicIndex:
    root: str
    tests: dict[str, list[AtomicTest]]
    """Technique id -> its tests in test-number order."""

    def techniques(self) -> list[str]:
        return sorted(self.tests)

    def for_technique(self, technique_id: str) -> list[AtomicTest]:
        return self.tests.get(technique_id, [])

    @property
    def test_count(self) -> int:
        return sum(len(v) for v in self.tests.values())

    def tests_for(self, technique_ids: list[str]) -> dict[str, list[AtomicTest]]:
        """The tests of ``technique_ids`` with their platforms (see :func:`with_platforms`)."""
        return with_platforms(self, technique_ids)


def normalize_platform(name: str) -> str:
    """A comparable key for an ATT&CK or Atomic platform name (``Windows`` == ``windows``,
    ``iaas:aws`` -> ``iaas``, ``Office Suite`` == ``office-365``)."""
    key = name.strip().lower()
    if key in PLATFORMS:
        key = PLATFORMS[key].lower()
    return key


def platform_matches(test_platforms: list[str], wanted: list[str]) -> bool:
    """True when ``wanted`` is empty or shares a platform with the test (either spelling)."""
    if not wanted:
        return True
    have = {normalize_platform(p) for p in test_platforms}
    return any(normalize_platform(w) in have for w in wanted)


def find_atomics_dir() -> Path | None:
    """$TTPGRAPH_ATOMICS_DIR, else ``../shared/corpora/atomic-red-team`` beside the repository
    or the current folder, when it holds the index."""
    env = os.environ.get("TTPGRAPH_ATOMICS_DIR")
    here = Path(__file__).resolve().parent.parent
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd().parent / "shared" / "corpora" / "atomic-red-team",
        here.parent / "shared" / "corpora" / "atomic-red-team",
    ]
    for c in candidates:
        if (c / INDEX_CSV).is_file():
            return c
    return None


def _root(path: Path | str) -> Path:
    p = Path(path).expanduser()
    for cand in (p, p.parent, p.parent.parent):
        if (cand / INDEX_CSV).is_file():
            return cand.resolve()
    if p.name == "index.csv" and p.is_file():
        # .../atomics/Indexes/Indexes-CSV/index.csv given directly
        return p.resolve().parents[3]
    raise InvalidInput(f"no Atomic Red Team index ({INDEX_CSV}) under {p}")


def read_index(path: Path | str) -> AtomicIndex:
    """The index of the Atomic Red Team checkout at ``path`` (its root, ``atomics/`` or the
    ``index.csv`` itself); :class:`InvalidInput` when there is none or it is not the index."""
    root = _root(path)
    st = (root / INDEX_CSV).stat()
    return _read_index_cached(str(root), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _read_index_cached(root: str, _mtime: int, _size: int) -> AtomicIndex:
    path = Path(root) / INDEX_CSV
    if _size > _MAX_INDEX_BYTES:
        raise InvalidInput(f"{path}: over {_MAX_INDEX_BYTES // (1024 * 1024)} MB")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    reader = csv.DictReader(text.splitlines())
    need = {"Tactic", "Technique #", "Test #", "Test Name", "Test GUID"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise InvalidInput(f"{path}: not the Atomic index (columns {sorted(need)} expected)")
    by_guid: dict[str, AtomicTest] = {}
    for n, row in enumerate(reader, 2):
        tid = (row.get("Technique #") or "").strip().upper()
        guid = (row.get("Test GUID") or "").strip().lower()
        if not _TECHNIQUE.match(tid) or not guid:
            continue
        try:
            number = int((row.get("Test #") or "").strip())
        except ValueError:
            raise InvalidInput(f"{path} line {n}: test number is not a number") from None
        tactic = (row.get("Tactic") or "").strip()
        test = by_guid.get(guid)
        if test is None:
            test = by_guid[guid] = AtomicTest(
                technique_id=tid,
                technique_name=(row.get("Technique Name") or "").strip(),
                test_number=number,
                name=(row.get("Test Name") or "").strip(),
                guid=guid,
                executor=(row.get("Executor Name") or "").strip(),
            )
        if tactic and tactic not in test.tactics:
            test.tactics.append(tactic)
    tests: dict[str, list[AtomicTest]] = {}
    for test in by_guid.values():
        tests.setdefault(test.technique_id, []).append(test)
    for lst in tests.values():
        lst.sort(key=lambda t: (t.test_number, t.guid))
    return AtomicIndex(root=root, tests=tests)


def with_platforms(index: AtomicIndex, technique_ids: list[str]) -> dict[str, list[AtomicTest]]:
    """The tests of ``technique_ids`` with ``platforms`` filled in (per-technique YAML first,
    the per-platform index CSVs for what the YAML does not give)."""
    root = Path(index.root)
    out: dict[str, list[AtomicTest]] = {}
    missing: list[AtomicTest] = []
    for tid in dict.fromkeys(technique_ids):
        tests = index.for_technique(tid)
        if not tests:
            continue
        platforms = _yaml_platforms(str(root), tid)
        filled = []
        for t in tests:
            plats = platforms.get(t.guid)
            copy = AtomicTest(**{**t.__dict__, "tactics": list(t.tactics)})
            copy.platforms = list(plats) if plats else []
            if not plats:
                missing.append(copy)
            filled.append(copy)
        out[tid] = filled
    if missing:
        by_csv = _csv_platforms(str(root))
        for t in missing:
            t.platforms = sorted(by_csv.get(t.guid, []))
    return out


@lru_cache(maxsize=2048)
def _yaml_platforms(root: str, technique_id: str) -> dict[str, tuple[str, ...]]:
    path = Path(root) / "atomics" / technique_id / f"{technique_id}.yaml"
    try:
        if path.stat().st_size > _MAX_YAML_BYTES:
            return {}
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("atomic_tests"), list):
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for test in data["atomic_tests"]:
        if not isinstance(test, dict):
            continue
        guid = str(test.get("auto_generated_guid") or "").strip().lower()
        plats = test.get("supported_platforms")
        if guid and isinstance(plats, list):
            out[guid] = tuple(dict.fromkeys(str(p).strip().lower() for p in plats if p))
    return out


@lru_cache(maxsize=4)
def _csv_platforms(root: str) -> dict[str, set[str]]:
    folder = Path(root) / INDEX_CSV.parent
    out: dict[str, set[str]] = {}
    for name, platform in _PLATFORM_CSVS.items():
        path = folder / name
        if not path.is_file():
            continue
        for row in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()):
            guid = (row.get("Test GUID") or "").strip().lower()
            if guid:
                out.setdefault(guid, set()).add(platform)
    return out


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML (libyaml when available)."""


def invoke_line(technique_id: str, tests: list[AtomicTest]) -> str:
    """``Invoke-AtomicTest T1059.001 -TestNumbers 1,2,5``."""
    numbers = ",".join(str(t.test_number) for t in sorted(tests, key=lambda t: t.test_number))
    return f"Invoke-AtomicTest {technique_id} -TestNumbers {numbers}"


def invoke_guid_line(technique_id: str, test: AtomicTest) -> str:
    """``Invoke-AtomicTest T1059.001 -TestGuids f3132740-...``."""
    return f"Invoke-AtomicTest {technique_id} -TestGuids {test.guid}"
