#!/usr/bin/env bash
# The first command: install ttpgraph, provision and start Neo4j, load ATT&CK, serve the API.
set -euo pipefail
cd "$(dirname "$0")/.."
# The extras are what the README's examples use: SVG/Excel layers (render), PNG networks (plot).
python3 -m pip install --quiet --disable-pip-version-check -e '.[render,plot]'
exec ttpgraph up "$@"
