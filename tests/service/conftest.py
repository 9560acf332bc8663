"""A real quick search and real `budgetune serve` processes over its tables, once per session.

The search starts in the background when a test first asks for it, and the server starts over
its folder at once, so the dashboard test sees the tables while they are being written; tests
that need the finished tables wait for the search to end (about 40 s on 2 CPU cores).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEARCH_BUDGET = "2e11"
# README.md's way to make a token file, as written.
README_TOKEN = ("python -c 'import secrets; print(secrets.token_urlsafe(32))' > token "
                "&& chmod 600 token")
# Tiny L-BFGS-B fits run 10-20x slower with OpenBLAS's threads on a busy 2-core machine.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
       "OMP_NUM_THREADS": "1"}


def budgetune(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "budgetune.cli", *args], capture_output=True,
                          env=ENV, cwd=ROOT, **kw)


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, timeout=120,
                          env={**ENV, "PATH": path}, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None, method: str = "GET"):
    """(status, headers, body) of one request; the path is sent as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


@dataclass
class Server:
    proc: subprocess.Popen
    port: int

    def get(self, path: str, headers: dict | None = None, method: str = "GET"):
        return get(self.port, path, headers, method)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_server(results: Path, *flags: str) -> Server:
    """The server's output goes to a file beside the results (a pipe nobody reads would fill
    and block the server)."""
    port = free_port()
    log = results.parent / f"serve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "budgetune.cli", "serve", "--results",
                                 str(results), "--port", str(port), *flags], env=ENV, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"budgetune serve exited {proc.returncode}: "
                                 f"{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Server(proc, port)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("budgetune serve did not open its port in 60 s")


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@dataclass
class LiveSearch:
    results: Path
    proc: subprocess.Popen
    log: Path

    def wait(self) -> None:
        rc = self.proc.wait(timeout=600)
        assert rc == 0, self.log.read_text()[-3000:]


@pytest.fixture(scope="session")
def live_search(tmp_path_factory) -> LiveSearch:
    """`budgetune search` on the quick space, running in the background."""
    results = tmp_path_factory.mktemp("served") / "results"
    results.mkdir()
    log = results.parent / "search.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "budgetune.cli", "search", "--space", "quick", "--budget",
             SEARCH_BUDGET, "--num-samples", "3", "--eval-tokens", "1024", "--results",
             str(results), "--name", "q"], env=ENV, cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT)
    yield LiveSearch(results, proc, log)
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture(scope="session")
def server(live_search) -> Server:
    """`budgetune serve` on loopback over the search's folder, from the search's start."""
    srv = start_server(live_search.results)
    yield srv
    stop(srv)


@pytest.fixture(scope="session")
def finished(live_search, server) -> Server:
    """The server, once the search has written its last rows."""
    live_search.wait()
    return server


@pytest.fixture(scope="session")
def guarded(live_search, tmp_path_factory) -> Server:
    """`budgetune serve` on every interface with README.md's token file, on the finished
    tables; ``guarded.folder`` holds the file ``token``."""
    folder = tmp_path_factory.mktemp("token")
    shell(README_TOKEN, folder)
    assert (folder / "token").stat().st_mode & 0o077 == 0
    live_search.wait()
    srv = start_server(live_search.results, "--host", "0.0.0.0", "--token-file",
                       str(folder / "token"))
    srv.folder = folder
    yield srv
    stop(srv)
