#!/usr/bin/env bash
# The first command: install ttpgraph, provision and start Neo4j, load ATT&CK, serve the API.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
exec ttpgraph up "$@"
