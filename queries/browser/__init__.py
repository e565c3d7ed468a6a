"""The Neo4j Browser kit: a style sheet and a query pack for analysts who work in Browser.

- ``ttpgraph.grass`` (beside this file): a colour per label and captions ATT&CK id + name.
  Neo4j Browser reads it when it is dropped onto the Browser window, pasted into ``:style``, or
  fetched with ``:style http://127.0.0.1:8000/api/v1/browser-kit/ttpgraph.grass``.
- The query pack: the ``queries/cypher/browser_*.cypher`` files (graph-shaped: they return
  paths, which Browser draws) plus the catalog questions that read well interactively
  (:data:`PACK_TABULAR`). Every file runs as-is after its ``:param`` lines.
- :func:`favorites_zip`: the pack as a zip Neo4j Browser imports as favorites when the file is
  dropped onto it (one folder, ``ttpgraph``; each favorite starts with its ``:param`` lines,
  which Browser's multi-statement editor runs before the query).

Pure file work: no database, no web or CLI imports.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from ..catalog import CatalogError, CypherQuery, load_catalog

KIT_DIR = Path(__file__).resolve().parent
GRASS_PATH = KIT_DIR / "ttpgraph.grass"
FAVORITES_FOLDER = "ttpgraph"

# Catalog questions (tables, not graphs) that an analyst also runs in Browser.
PACK_TABULAR = (
    "groups_search",
    "group_info",
    "group_technique_evidence",
    "group_software",
    "group_campaigns",
    "technique_details",
    "mitigations_for_techniques",
)
# A fixed timestamp: the same pack gives the same zip bytes.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def grass_text() -> str:
    """The style sheet's text."""
    return GRASS_PATH.read_text(encoding="utf-8")


def pack() -> list[CypherQuery]:
    """The query pack: every ``browser_*`` query, then :data:`PACK_TABULAR`, in that order."""
    catalog = load_catalog()
    graph_shaped = [q for name, q in sorted(catalog.items()) if name.startswith("browser_")]
    missing = [name for name in PACK_TABULAR if name not in catalog]
    if missing:
        raise CatalogError(f"the Browser pack names queries that do not exist: {missing}")
    return graph_shaped + [catalog[name] for name in PACK_TABULAR]


def favorite_text(query: CypherQuery) -> str:
    """One favorite: a title line (Browser shows a favorite's first line as its name), the
    ``:param`` lines from the query's example, then the query itself."""
    kind = "graph" if query.name.startswith("browser_") else "table"
    title = query.name.removeprefix("browser_").replace("_", " ")
    lines = [f"// ttpgraph {kind}: {title}"]
    if query.example:
        lines += [line + ";" for line in query.browser_params().splitlines()]
    return "\n".join(lines) + "\n" + query.text.rstrip() + "\n"


def favorites_zip() -> bytes:
    """The pack as a zip of ``ttpgraph/<name>.cypher`` files: drop it onto Neo4j Browser and
    each becomes a favorite in a ``ttpgraph`` folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for q in pack():
            info = zipfile.ZipInfo(f"{FAVORITES_FOLDER}/{q.name}.cypher", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, favorite_text(q))
    return buf.getvalue()


def write_kit(folder: Path) -> list[Path]:
    """Write ``ttpgraph.grass``, ``ttpgraph-favorites.zip`` and one ``.cypher`` file per pack
    query (with its ``:param`` lines) into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    grass = folder / "ttpgraph.grass"
    grass.write_text(grass_text(), encoding="utf-8")
    written.append(grass)
    favorites = folder / "ttpgraph-favorites.zip"
    favorites.write_bytes(favorites_zip())
    written.append(favorites)
    for q in pack():
        path = folder / f"{q.name}.cypher"
        path.write_text(favorite_text(q), encoding="utf-8")
        written.append(path)
    return written
