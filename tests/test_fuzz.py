"""Property-based tests (hypothesis): malformed input made from real ATT&CK objects and real
rule files. Each gets a clear one-line error or a counted skip, never a crash; what passes
validation is writable as it stands. No database here: everything a load does before its one
write transaction (``loader.load.prepare``) is exercised; test_faults.py sends malformed bundles
through a real load."""

from __future__ import annotations

import copy
import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loader import sources
from loader.inventory import PARSERS, parse_inventory
from loader.load import prepare
from loader.stix import NODE_LABELS, BundleError, GraphRows
from queries.errors import InvalidInput

from .conftest import ICS_21, MOBILE

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# A real bundle to break: ICS 18.1 (STIX 2.1, 1,826 objects, every kind of object and reference).
REAL: list[dict[str, Any]] = json.loads(ICS_21.read_text(encoding="utf-8"))["objects"]
REF_KEYS = ("source_ref", "target_ref", "x_mitre_data_source_ref", "tactic_refs",
            "x_mitre_analytic_refs", "created_by_ref")  # fmt: skip

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
stix_ids = st.builds(
    lambda t, u: f"{t}--{u}",
    st.sampled_from(["attack-pattern", "intrusion-set", "x-mitre-tactic", "relationship",
                     "x-mitre-data-component", "malware"]),
    st.uuids().map(str),
)  # fmt: skip


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, int, Any]:
    kind = draw(st.sampled_from([
        "wrong-type", "drop-key", "unknown-type", "dangling", "huge-string", "deep-nesting",
        "not-an-object", "garbage-refs", "duplicate", "bad-phase",
    ]))  # fmt: skip
    index = draw(st.integers(min_value=0, max_value=len(REAL) - 1))
    if kind == "wrong-type":
        return kind, index, (draw(st.integers(0, 50)), draw(json_values))
    if kind == "unknown-type":
        return kind, index, draw(st.sampled_from(["x-acme-thing", "indicator", "Bad Type!", ""]))
    if kind == "dangling":
        return kind, index, draw(stix_ids)
    if kind == "huge-string":
        return kind, index, draw(st.integers(1_000, 2_000_000))
    if kind == "deep-nesting":
        return kind, index, draw(st.integers(50, 900))
    if kind == "garbage-refs":
        return kind, index, draw(st.lists(json_values, min_size=1, max_size=4))
    return kind, index, draw(st.integers(0, 50))


def apply(objs: list[Any], kind: str, index: int, arg: Any) -> None:
    obj = objs[index]
    keys = sorted(obj)
    if kind == "wrong-type":
        obj[keys[arg[0] % len(keys)]] = arg[1]
    elif kind == "drop-key":
        del obj[keys[arg % len(keys)]]
    elif kind == "unknown-type":
        obj["type"] = arg
        if arg:
            obj["id"] = f"{arg}--{obj['id'].split('--')[-1]}"
    elif kind == "dangling":
        present = [k for k in REF_KEYS if k in obj]
        if present:
            k = present[0]
            obj[k] = [arg] if isinstance(obj[k], list) else arg
        else:
            obj["x_mitre_data_source_ref"] = arg
    elif kind == "huge-string":
        obj["description" if index % 2 else "name"] = "A" * arg
    elif kind == "deep-nesting":
        obj["x_mitre_nested"] = nested(arg)
    elif kind == "not-an-object":
        objs[index] = [obj["id"]] if arg % 2 else arg
    elif kind == "garbage-refs":
        obj["external_references"] = arg
    elif kind == "duplicate":
        objs.append(copy.deepcopy(obj))
    elif kind == "bad-phase":
        obj["kill_chain_phases"] = [
            {"kill_chain_name": "mitre-ics-attack", "phase_name": f"p{arg}"}
        ]


def check_writable(rows: GraphRows) -> None:
    """What validation let through is what Neo4j stores: scalars and string lists only."""
    for labels, group in rows.nodes.items():
        assert labels in NODE_LABELS.values()
        for props in group:
            for key, val in props.items():
                assert isinstance(key, str) and key.isidentifier(), key
                ok = (
                    val is None
                    or isinstance(val, (str, bool, float))
                    or (isinstance(val, int) and -(2**63) <= val < 2**63)
                    or (isinstance(val, list) and all(isinstance(x, str) for x in val))
                )
                assert ok, (key, type(val))
    for group in rows.rels.values():
        for rel in group:
            for key, val in rel["props"].items():
                assert val is None or isinstance(val, (str, bool, list)), (key, type(val))


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


@FAST
@given(muts=st.lists(mutation(), min_size=1, max_size=3))
def test_malformed_objects_give_an_error_or_a_counted_skip(muts: list) -> None:
    objs: list[Any] = copy.deepcopy(REAL)
    for kind, index, arg in muts:
        if not isinstance(objs[index], dict):
            continue
        apply(objs, kind, index, arg)
    fetched = sources.FetchedBundle(objs, "2.1", "bundle.json", "0" * 64, "ics-attack-18.1.json")
    try:
        rows = prepare(fetched)
    except BundleError as exc:
        assert one_line(exc).startswith("bundle.json")
        return
    check_writable(rows)
    kinds = {m[0] for m in muts}
    if kinds == {"unknown-type"}:  # unknown types are skipped and counted, not written
        assert sum(rows.skipped.values()) >= 1


@FAST
@given(kind=st.sampled_from(["name", "id", "type"]), index=st.integers(0, len(REAL) - 1))
def test_required_fields_missing_or_wrong_are_named(kind: str, index: int) -> None:
    objs = copy.deepcopy(REAL)
    obj = objs[index]
    assume(obj["type"] in NODE_LABELS or kind != "name")
    obj[kind] = 42
    fetched = sources.FetchedBundle(objs, "2.1", "bundle.json", "0" * 64, "ics-attack-18.1.json")
    with pytest.raises(BundleError) as info:
        prepare(fetched)
    msg = one_line(info.value)
    assert f"objects[{index}]" in msg and f"'{kind}'" in msg or "is not a STIX id" in msg


@FAST
@given(index=st.sampled_from([i for i, o in enumerate(REAL) if o["type"] == "relationship"]),
       ref=stix_ids)  # fmt: skip
def test_dangling_references_are_refused(index: int, ref: str) -> None:
    objs = copy.deepcopy(REAL)
    objs[index]["target_ref"] = ref
    assume(ref not in {o["id"] for o in REAL})
    fetched = sources.FetchedBundle(objs, "2.1", "b.json", "0" * 64, "ics-attack-18.1.json")
    with pytest.raises(BundleError, match="which is not in the bundle") as info:
        prepare(fetched)
    assert ref in one_line(info.value)


@FAST
@given(data=st.binary(max_size=2000))
def test_random_bytes_are_refused_with_one_line(data: bytes) -> None:
    try:
        fetched = sources.from_bytes(data, source="random.bin")
        prepare(fetched)
    except BundleError as exc:
        assert one_line(exc).startswith("random.bin")
        return
    pytest.fail("random bytes were accepted as an ATT&CK bundle")


@FAST
@given(cut=st.integers(min_value=0, max_value=len(MOBILE.read_bytes()) - 2), gz=st.booleans())
def test_truncated_bundles_are_refused(cut: int, gz: bool) -> None:
    raw = MOBILE.read_bytes()[:cut]
    if gz:
        raw = gzip.compress(MOBILE.read_bytes())[: max(cut // 10, 2)]
    with pytest.raises(BundleError) as info:
        prepare(sources.from_bytes(raw, source="cut.json"))
    one_line(info.value)


@settings(max_examples=15, deadline=None)
@given(depth=st.integers(min_value=100, max_value=20_000))
def test_deeply_nested_json_is_refused(depth: int) -> None:
    raw = b'{"type": "bundle", "objects": [' + b"[" * depth + b"]" * depth + b"]}"
    try:
        prepare(sources.from_bytes(raw, source="deep.json"))
    except BundleError as exc:
        one_line(exc)
        return
    pytest.fail("a deeply nested bundle was accepted")


@settings(max_examples=10, deadline=None)
@given(megabytes=st.integers(min_value=2, max_value=40), nested_gzip=st.booleans())
def test_gzip_bombs_are_refused(megabytes: int, nested_gzip: bool) -> None:
    body = b'{"type": "bundle", "objects": [' + b" " * (megabytes * 1024 * 1024) + b"]}"
    bomb = gzip.compress(body, compresslevel=9)
    if nested_gzip:
        bomb = gzip.compress(bomb)
    assert len(bomb) < 1024 * 1024
    with pytest.MonkeyPatch.context() as mp, pytest.raises(BundleError) as info:
        mp.setattr(sources, "MAX_BUNDLE_BYTES", 1024 * 1024)
        prepare(sources.from_bytes(bomb, source="bomb.json.gz"))
    msg = one_line(info.value)
    assert "larger than 1 MB" in msg or "not valid JSON" in msg


# ------------------------------------------------------------------------------ inventories

INVENTORY_FILES = {
    "sigma": "rule.yml",
    "splunk": "detection.yml",
    "sentinel": "rule.yaml",
    "elastic": "rule.toml",
    "csv": "rules.csv",
    "splunk-es": "saved.csv",
    "layer": "layer.json",
}
SIGMA_RULE = (
    "title: Real-looking rule\nid: 5f2b7f1e-0000-4000-8000-000000000001\nstatus: stable\n"
    "tags:\n  - attack.t1059.001\n  - attack.execution\n"
    "logsource:\n  product: windows\ndetection:\n  sel:\n    Image|endswith: '\\powershell.exe'\n"
    "  condition: sel\n"
)
yamlish = st.text(
    alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#%@`\n\t ,?T1059.")), max_size=300
)
encodings = st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"])


def parse_ok(fmt: str, path: Path) -> None:
    """A parse either works (rules and issues, each issue one line) or names the input."""
    try:
        inv = parse_inventory(fmt, path)
    except InvalidInput as exc:
        one_line(exc)
        return
    for issue in inv.issues:
        assert "\n" not in issue.message, issue.message
    for rule in inv.rules:
        assert all(t.startswith("T") for t in rule.techniques)


@FAST
@given(fmt=st.sampled_from(sorted(INVENTORY_FILES)), text=yamlish, enc=encodings)
def test_broken_inventory_files_never_crash(tmp_path_factory: pytest.TempPathFactory, fmt: str,
                                            text: str, enc: str) -> None:  # fmt: skip
    folder = tmp_path_factory.mktemp("inv")
    try:
        data = text.encode(enc)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    target = folder / INVENTORY_FILES[fmt]
    target.write_bytes(data)
    parse_ok(fmt, target if fmt in ("csv", "splunk-es", "layer") else folder)


@FAST
@given(mutation_at=st.integers(0, len(SIGMA_RULE) - 1), junk=yamlish, enc=encodings)
def test_mangled_real_sigma_rules_never_crash(
    tmp_path_factory: pytest.TempPathFactory, mutation_at: int, junk: str, enc: str
) -> None:
    folder = tmp_path_factory.mktemp("sigma")
    text = SIGMA_RULE[:mutation_at] + junk + SIGMA_RULE[mutation_at:]
    try:
        (folder / "rule.yml").write_bytes(text.encode(enc))
    except UnicodeEncodeError:
        (folder / "rule.yml").write_bytes(text.encode("utf-8", "surrogatepass"))
    parse_ok("sigma", folder)


@settings(max_examples=20, deadline=None)
@given(fmt=st.sampled_from(["sigma", "splunk", "sentinel", "elastic"]), depth=st.integers(1, 4))
def test_symlinks_out_of_the_folder_are_skipped(tmp_path_factory: pytest.TempPathFactory,
                                                fmt: str, depth: int) -> None:  # fmt: skip
    base = tmp_path_factory.mktemp("links")
    outside = base / "outside"
    outside.mkdir()
    secret = outside / ("secret" + Path(INVENTORY_FILES[fmt]).suffix)
    secret.write_text(SIGMA_RULE)
    root = base / "rules"
    inner = root.joinpath(*[f"d{i}" for i in range(depth)])
    inner.mkdir(parents=True)
    os.symlink(secret, inner / ("link" + secret.suffix))
    os.symlink(outside, inner / "linked-folder")
    inv = parse_inventory(fmt, root)
    assert not inv.rules, "a rule was read through a symlink leading out of the folder"
    messages = [i.message for i in inv.issues]
    assert any("outside the imported root" in m for m in messages), messages


def test_every_inventory_format_is_covered() -> None:
    assert set(INVENTORY_FILES) == set(PARSERS)
