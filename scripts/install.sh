#!/usr/bin/env bash
# Install budgetune and its pinned dependencies into ./.venv.
# torch is installed first, pinned, so that pip takes the CPU build where one lies on disk and
# never resolves a free `torch` to a multi-GB CUDA build. Set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "budgetune installed in $(pwd)/.venv ($(.venv/bin/budgetune --version))"
