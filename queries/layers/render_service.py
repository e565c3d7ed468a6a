"""Layers drawn from the graph: :func:`render_layer` draws any layer as SVG or Excel with
mitreattack-python, from a matrix bundle written from the graph itself
(:func:`matrix_bundle`), so it works whatever the data came from (file, URL or TAXII)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph
from ..settings import cache_dir
from .export import layer_domain_release, norm_domain
from .format import technique_url
from .read import read_layer
from .render import RENDER_HINT, RenderingUnavailable, RenderReport, render_svg, render_xlsx

__all__ = ["matrix_bundle", "render_layer", "require_renderer"]


# How a technique's kill chain phase is named in each domain's STIX (for the matrix bundle).
_KILL_CHAIN = {
    "enterprise-attack": "mitre-attack",
    "mobile-attack": "mitre-mobile-attack",
    "ics-attack": "mitre-ics-attack",
}


def _matrix_bundle_objects(graph: Graph, domain: str) -> list[dict[str, Any]]:
    matrices = graph.read(Q.layer_matrix, domain=domain, limit=10)
    if not matrices:
        raise NotFound(f"no current {domain} matrix in the graph")
    techniques = graph.read(Q.layer_matrix_techniques, domain=domain, limit=100_000)
    m = matrices[0]
    kill_chain = _KILL_CHAIN[domain]

    def ext(attack_id: str, url: str | None = None) -> list[dict[str, str]]:
        ref = {"source_name": "mitre-attack", "external_id": attack_id}
        if url:
            ref["url"] = url
        return [ref]

    objects: list[dict[str, Any]] = [
        {
            "type": "x-mitre-matrix",
            "id": m["stix_id"],
            "created": m["created"],
            "modified": m["modified"],
            "name": m["name"],
            "tactic_refs": [t["stix_id"] for t in m["tactics"]],
            "external_references": ext(domain),
        }
    ]
    for t in m["tactics"]:
        objects.append(
            {
                "type": "x-mitre-tactic",
                "id": t["stix_id"],
                "created": t["created"],
                "modified": t["modified"],
                "name": t["name"],
                "x_mitre_shortname": t["shortname"],
                "external_references": ext(t["attack_id"]),
            }
        )
    for t in techniques:
        if not t["tactics"]:
            continue
        objects.append(
            {
                "type": "attack-pattern",
                "id": t["stix_id"],
                "created": t["created"],
                "modified": t["modified"],
                "name": t["name"],
                "kill_chain_phases": [
                    {"kill_chain_name": kill_chain, "phase_name": p} for p in t["tactics"]
                ],
                "external_references": ext(t["technique_id"], technique_url(t["technique_id"])),
                "x_mitre_platforms": t["platforms"],
                "x_mitre_is_subtechnique": t["is_subtechnique"],
                "x_mitre_domains": [domain],
            }
        )
    return objects


def matrix_bundle(graph: Graph, domain: str) -> Path:
    """A STIX bundle of ``domain``'s matrix as the graph holds it (matrix, tactics, current
    techniques), for mitreattack-python's renderers; written once per loaded release into
    ttpgraph's cache folder (``$TTPGRAPH_CACHE_DIR`` or ``~/.cache/ttpgraph``)."""
    dom = norm_domain(domain) or "enterprise-attack"
    release = layer_domain_release(graph, dom)
    key = hashlib.sha256(
        json.dumps([dom, release.get("sha256"), release.get("loaded_at")]).encode()
    ).hexdigest()[:20]
    folder = cache_dir() / "render"
    path = folder / f"matrix-{dom}-{key}.json"
    if path.is_file():
        return path
    bundle = {
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-" + key[:12],
        "objects": _matrix_bundle_objects(graph, dom),
    }
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.stem, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(bundle, fh)
    os.replace(tmp, path)
    return path


def require_renderer() -> None:
    """Raise RenderingUnavailable, naming the extra to install, unless SVG/Excel can be drawn;
    callers check first so that nothing is written when it cannot."""
    try:
        import mitreattack.navlayers  # noqa: F401
    except ImportError as exc:
        raise RenderingUnavailable(f"{RENDER_HINT}: {exc}") from None


def render_layer(
    graph: Graph,
    *,
    layer: Mapping[str, Any],
    fmt: str,
    out_path: str | Path,
    svg_options: Mapping[str, Any] | None = None,
) -> RenderReport:
    """Draw ``layer`` as SVG or Excel with mitreattack-python, on the matrix the graph holds.

    Raises :class:`queries.layers.RenderingUnavailable` (501 over HTTP) when mitreattack-python
    is not installed, :class:`InvalidInput` for a bad layer or format.
    """
    if fmt not in ("svg", "xlsx"):
        raise InvalidInput(f"format {fmt!r}: use svg or xlsx")
    require_renderer()
    parsed = read_layer(dict(layer))
    bundle = matrix_bundle(graph, parsed.domain)
    if fmt == "svg":
        return render_svg(layer, bundle, out_path, svg_options=svg_options)
    return render_xlsx(layer, bundle, out_path)
