"""`budgetune serve` beyond loopback: a bearer token on every request, or no start at all."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import (
    ENV,
    README_TOKEN,
    SEARCH_BUDGET,
    budgetune,
    free_port,
    shell,
)

PATHS = ["/", "/docs", "/openapi.json", "/api/version", "/api/searches", "/api/status",
         f"/api/best?budget={SEARCH_BUDGET}", "/api/frontier", "/api/plots",
         "/api/plots/gpt2_frontier.png", "/no-such-page"]
# README.md's commands, as written (the port is the test's own).
README_CURL = 'curl -H "Authorization: Bearer $(cat token)" http://127.0.0.1:8421/api/status'




def test_serve_refuses_to_start_beyond_loopback_without_a_usable_token(tmp_path):
    """Each refusal in a process of its own, all at once: a server that started would hang."""
    (tmp_path / "empty").write_text("\n")
    cases = {("--host", "0.0.0.0"): "--token-file", ("--host", "::"): "--token-file",
             ("--host", "192.0.2.1"): "--token-file",
             ("--host", "0.0.0.0", "--token-file", str(tmp_path / "empty")): "is empty",
             ("--host", "0.0.0.0", "--token-file", str(tmp_path / "missing")): "cannot be read",
             ("--results", str(tmp_path / "nope")): "does not exist",
             ("--port", "70000"): "must be in [0, 65535]", ("--port", "http"): "invalid int"}
    procs = {flags: subprocess.Popen(
        [sys.executable, "-m", "budgetune.cli", "serve", "--results", str(tmp_path), "--port",
         str(free_port()), *flags], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for flags in cases}
    try:
        for flags, expected in cases.items():
            err = procs[flags].communicate(timeout=120)[1].decode()
            assert procs[flags].returncode == 2, (flags, err)
            assert err.startswith("budgetune: error: ") and err.count("\n") == 1, err
            assert expected in err, (flags, err)
    finally:
        for proc in procs.values():
            proc.kill()


def test_every_path_needs_the_bearer_token_beyond_loopback(guarded):
    token = (guarded.folder / "token").read_text().strip()
    assert len(token) >= 40
    wrong = [{}, {"Authorization": f"Bearer {token}x"}, {"Authorization": f"Bearer {token[:-1]}"},
             {"Authorization": token}, {"Authorization": f"Basic {token}"},
             {"Authorization": "Bearer "}]
    for path in PATHS:
        for headers in wrong:
            status, _, body = guarded.get(path, headers)
            assert status == 401, (path, headers, status)
            assert b"budget-2e+11" not in body and b"gpt2" not in body
        status, _, _ = guarded.get(path, {"Authorization": f"Bearer {token}"})
        assert status == (404 if path == "/no-such-page" else 200), path


def test_the_readme_shows_these_commands():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for line in (README_TOKEN, README_CURL, "budgetune serve --results DIR --port 8421",
                 "budgetune serve --results DIR --host 0.0.0.0 --port 8421 --token-file token",
                 "curl 'http://127.0.0.1:8421/api/best?budget=2e11&max_mb=2'"):
        assert line in readme, line


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_readme_curl_with_the_token_gets_the_status(guarded, live_search):
    out = shell(README_CURL.replace("8421", str(guarded.port)), guarded.folder).stdout
    assert out == budgetune("status", "--json", "--results", str(live_search.results)).stdout
