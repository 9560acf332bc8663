"""`budgetune serve` beyond loopback: a bearer token on every request, or no start at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from budgetune.cli import main
from tests.service.conftest import ENV, SEARCH_BUDGET, budgetune, start_server, stop

PATHS = ["/", "/docs", "/openapi.json", "/api/version", "/api/searches", "/api/status",
         f"/api/best?budget={SEARCH_BUDGET}", "/api/frontier", "/api/plots",
         "/api/plots/gpt2_frontier.png", "/no-such-page"]
# README.md's commands, as written (the port is the test's own).
README_TOKEN = ("python -c 'import secrets; print(secrets.token_urlsafe(32))' > token "
                "&& chmod 600 token")
README_CURL = 'curl -H "Authorization: Bearer $(cat token)" http://127.0.0.1:8421/api/status'


def _shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, timeout=120,
                          env={**ENV, "PATH": path}, check=True)


def _one_line_exit_2(capsys, *argv: str) -> str:
    """Refusals come before any server starts, so the CLI runs in this process."""
    with pytest.raises(SystemExit) if "http" in argv else contextlib.nullcontext():
        assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("budgetune: error: ") and err.count("\n") == 1, err
    return err


def test_serve_refuses_to_bind_beyond_loopback_without_a_token(tmp_path, capsys):
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        err = _one_line_exit_2(capsys, "--results", str(tmp_path), "--host", host)
        assert "--token-file" in err
    (tmp_path / "empty").write_text("\n")
    for bad in ("empty", "missing"):
        err = _one_line_exit_2(capsys, "--results", str(tmp_path), "--host", "0.0.0.0",
                               "--token-file", str(tmp_path / bad))
        assert "token file" in err
    err = _one_line_exit_2(capsys, "--results", str(tmp_path / "nope"))
    assert "does not exist" in err
    for port in ("70000", "-1", "http"):
        _one_line_exit_2(capsys, "--results", str(tmp_path), "--port", port)


@pytest.fixture(scope="module")
def guarded(live_search, tmp_path_factory):
    folder = tmp_path_factory.mktemp("token")
    _shell(README_TOKEN, folder)
    assert (folder / "token").stat().st_mode & 0o077 == 0
    live_search.wait()
    srv = start_server(live_search.results, "--host", "0.0.0.0", "--token-file",
                       str(folder / "token"))
    srv.folder = folder
    yield srv
    stop(srv)


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
                 "curl 'http://127.0.0.1:8421/api/best?budget=2e11&max_mb=1'"):
        assert line in readme, line


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_readme_curl_with_the_token_gets_the_status(guarded, live_search):
    out = _shell(README_CURL.replace("8421", str(guarded.port)), guarded.folder).stdout
    assert out == budgetune("status", "--json", "--results", str(live_search.results)).stdout
