"""Seeded synthetic inputs for the scale benchmarks: detection-rule inventories (CSV) and an
organisation's intelligence (a STIX 2.1 bundle), sized 1k to 1M, built from the real ATT&CK ids.

    python -m benchmarks.synthetic inventory 100000 -o /tmp/rules-100k.csv
    python -m benchmarks.synthetic intel 1000000 -o /tmp/intel-1m.json

Same seed and size, same file (byte for byte).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from .common import ENTERPRISE

SEED = 14
STATUSES = ["active"] * 8 + ["test", "experimental"]
_NS = uuid.UUID("5b0c3f0a-9a57-4d4e-8f39-3e5a4b9c1d14")


@lru_cache(maxsize=2)
def attack_ids(bundle: Path = ENTERPRISE) -> dict[str, list[str]]:
    """The bundle's current technique ids and group ids: {"techniques": [...], "groups": [...]}."""
    data = json.loads(Path(bundle).read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {"techniques": [], "groups": []}
    kinds = {"attack-pattern": "techniques", "intrusion-set": "groups"}
    for o in data["objects"]:
        kind = kinds.get(o.get("type"))
        if kind is None or o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        for ref in o.get("external_references", []):
            if ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
                out[kind].append(ref["external_id"])
    return {k: sorted(v) for k, v in out.items()}


def size(text: str) -> int:
    """``1k`` -> 1000, ``1M`` -> 1000000, ``2500`` -> 2500."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def write_inventory_csv(path: Path, rules: int, *, seed: int = SEED) -> Path:
    """A CSV inventory of ``rules`` rules (columns rule_id, name, technique, status), each
    tagged with 1-3 distinct current Enterprise technique ids."""
    rng = random.Random(seed)
    techniques = attack_ids()["techniques"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("rule_id,name,technique,status\n")
        for i in range(1, rules + 1):
            tags = " ".join(rng.sample(techniques, rng.randint(1, 3)))
            fh.write(f"R-{i:07d},Synthetic rule {i:07d},{tags},{rng.choice(STATUSES)}\n")
    return path


def _sid(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(_NS, '/'.join(str(p) for p in parts))}"


def intel_objects(indicators: int, *, seed: int = SEED) -> Any:
    """The objects of an intelligence bundle: 50 intrusion sets (the organisation's clusters,
    each using 10-40 real techniques), ``indicators`` IOCs split between indicators (patterns)
    and observables, each IOC indicating or related to a cluster, and one sighting per ten IOCs.
    A generator, so a 1M-object bundle is written without holding it."""
    rng = random.Random(seed)
    ts = "2026-11-20T00:00:00.000Z"
    techniques = attack_ids()["techniques"]
    clusters = []
    emitted: set[str] = set()
    identity = _sid("identity", "soc")
    yield {
        "type": "identity", "spec_version": "2.1", "id": identity, "created": ts,
        "modified": ts, "name": "Synthetic SOC", "identity_class": "organization",
    }  # fmt: skip
    for c in range(50):
        cid = _sid("intrusion-set", c)
        clusters.append(cid)
        yield {
            "type": "intrusion-set", "spec_version": "2.1", "id": cid, "created": ts,
            "modified": ts, "name": f"Synthetic Cluster {c:02d}",
        }  # fmt: skip
        for t in rng.sample(techniques, rng.randint(10, 40)):
            yield {
                "type": "relationship", "spec_version": "2.1",
                "id": _sid("relationship", "uses", c, t), "created": ts, "modified": ts,
                "relationship_type": "uses", "source_ref": cid,
                "target_ref": _sid("attack-pattern", t),
            }  # fmt: skip
            if t in emitted:
                continue
            emitted.add(t)
            yield {
                "type": "attack-pattern", "spec_version": "2.1", "id": _sid("attack-pattern", t),
                "created": ts, "modified": ts, "name": t,
                "external_references": [{"source_name": "mitre-attack", "external_id": t}],
            }  # fmt: skip
    for i in range(indicators):
        cluster = clusters[rng.randrange(len(clusters))]
        a, b, c, d = (rng.randrange(1, 255) for _ in range(4))
        ip = f"{10 + a % 200}.{b}.{c}.{d}"
        if i % 2 == 0:
            oid = _sid("indicator", i)
            yield {
                "type": "indicator", "spec_version": "2.1", "id": oid, "created": ts,
                "modified": ts, "name": f"ioc-{i}", "pattern_type": "stix",
                "pattern": f"[ipv4-addr:value = '{ip}']", "valid_from": ts,
            }  # fmt: skip
            rel = "indicates"
        else:
            oid = _sid("domain-name", i)
            yield {
                "type": "domain-name", "spec_version": "2.1", "id": oid,
                "value": f"host-{i}.example-{i % 997}.test",
            }  # fmt: skip
            rel = "related-to"
        yield {
            "type": "relationship", "spec_version": "2.1", "id": _sid("relationship", rel, i),
            "created": ts, "modified": ts, "relationship_type": rel, "source_ref": oid,
            "target_ref": cluster,
        }  # fmt: skip
        if i % 10 == 0:
            yield {
                "type": "sighting", "spec_version": "2.1", "id": _sid("sighting", i),
                "created": ts, "modified": ts, "sighting_of_ref": oid if rel == "indicates"
                else cluster, "observed_data_refs": [], "where_sighted_refs": [identity],
                "count": rng.randint(1, 20), "first_seen": ts, "last_seen": ts,
            }  # fmt: skip


def write_intel_bundle(path: Path, indicators: int, *, seed: int = SEED) -> Path:
    """A STIX 2.1 bundle (see :func:`intel_objects`), written object by object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        head = {"type": "bundle", "id": _sid("bundle", indicators, seed)}
        fh.write(json.dumps(head)[:-1] + ', "objects": [\n')
        first = True
        for obj in intel_objects(indicators, seed=seed):
            fh.write(("" if first else ",\n") + json.dumps(obj, separators=(",", ":")))
            first = False
        fh.write("\n]}\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["inventory", "intel"])
    ap.add_argument("size", type=size, help="rules or IOCs: 1000, 10k, 1M")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    write = write_inventory_csv if args.kind == "inventory" else write_intel_bundle
    print(write(args.output, args.size, seed=args.seed))


if __name__ == "__main__":
    main()


@lru_cache(maxsize=2)
def group_techniques(bundle: Path = ENTERPRISE) -> dict[str, set[str]]:
    """Current group id -> the current techniques it uses directly (the bundle's ``uses``)."""
    data = json.loads(Path(bundle).read_text(encoding="utf-8"))
    current = {
        o["id"]: ref["external_id"]
        for o in data["objects"]
        if o.get("type") in ("intrusion-set", "attack-pattern")
        and not o.get("revoked")
        and not o.get("x_mitre_deprecated")
        for ref in o.get("external_references", [])[:1]
        if ref.get("source_name") == "mitre-attack"
    }
    out: dict[str, set[str]] = {}
    for o in data["objects"]:
        if o.get("type") != "relationship" or o.get("relationship_type") != "uses":
            continue
        src, dst = o["source_ref"], o["target_ref"]
        if src.startswith("intrusion-set--") and src in current and dst in current:
            out.setdefault(current[src], set()).add(current[dst])
    return out


def actor_sets(
    actors: int, *, seed: int = SEED, draw: str = "popular"
) -> dict[str, tuple[str, set[str]]]:
    """ATT&CK's real groups (their direct techniques) and synthetic actors up to ``actors``:
    each as many techniques as a real group chosen at random, drawn (``draw``) by how many
    groups use each technique (``popular``: popular techniques are common, as in the real
    data, so actors overlap a lot) or uniformly among the techniques groups use
    (``uniform``: actors rarely overlap)."""
    rng = random.Random(seed)
    real = group_techniques()
    out = {gid: (gid, set(techs)) for gid, techs in sorted(real.items())}
    popularity = [t for _, techs in sorted(real.items()) for t in sorted(techs)]
    if draw == "uniform":
        popularity = sorted(set(popularity))
    sizes = [len(techs) for _, techs in sorted(real.items())]
    i = 0
    while len(out) < actors:
        want = sizes[rng.randrange(len(sizes))]
        techs: set[str] = set()
        while len(techs) < want:
            techs.add(popularity[rng.randrange(len(popularity))])
        i += 1
        out[f"X{i:05d}"] = (f"Synthetic actor {i:05d}", techs)
    return out
