#!/usr/bin/env bash
# Install, lint, then run both test suites: the default one and the tests marked slow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The dashboard test (tests/service/test_dashboard.py) drives Debian's chromium: install it where
# it is missing and apt-get can (root, as in CI); elsewhere that test skips and says why.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        >/dev/null; } || echo "chromium could not be installed: the dashboard test will skip"
fi
.venv/bin/ruff check budgetune tests benchmarks
# --durations: CI must stay under 30 minutes; the slowest tests are named in every run.
.venv/bin/python -m pytest -m "slow or not slow" --durations=20 "$@"
