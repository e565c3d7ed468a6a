#!/usr/bin/env bash
# The test command: installs what the tests need (Python packages, Neo4j from Maven Central),
# then lint, types and the whole suite against a real Neo4j started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
python3 -m api.cli neo4j install
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy loader queries api
python3 -m pytest -q -p no:cacheprovider "$@"
