#!/usr/bin/env bash
# Install, lint, then run both test suites: the default one and the tests marked slow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check budgetune tests benchmarks
.venv/bin/python -m pytest -m "slow or not slow" "$@"
