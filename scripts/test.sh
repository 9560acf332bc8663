#!/usr/bin/env bash
# Install, lint, then run both test suites: the default one and the tests marked slow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check budgetune tests benchmarks
# --durations: CI must stay under 30 minutes; the slowest tests are named in every run.
.venv/bin/python -m pytest -m "slow or not slow" --durations=20 "$@"
