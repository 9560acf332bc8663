#!/usr/bin/env bash
# Install budgetune and the exact versions it was tested with (constraints.txt) into ./.venv.
# torch is installed first, pinned by the constraints, so that pip takes the CPU build where one
# lies on disk and never resolves a free `torch` to a multi-GB CUDA build. pyproject.toml itself
# declares ranges (a CUDA torch is accepted). Set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt torch
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
echo "budgetune installed in $(pwd)/.venv ($(.venv/bin/budgetune --version))"
