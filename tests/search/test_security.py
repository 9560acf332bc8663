"""The sockets of a search: every listener of the Ray processes budgetune starts is loopback-only
or refuses a client without the token (SECURITY.md).

A real ``budgetune search`` runs in a subprocess; while it trains, its process tree's listening
TCP sockets are read from ``ss`` and every one not bound to loopback is probed at once as an
attacker on the network would: real Ray gRPC methods without the token, and plain HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.search.processes import descendants

grpc = pytest.importorskip("grpc")

pytestmark = pytest.mark.slow

LOOPBACK = ("127.0.0.1", "[::1]", "[::ffff:127.0.0.1]")
# Methods every Ray server of its kind implements; an empty message is a valid request.
METHODS = ("/ray.rpc.NodeInfoGcsService/GetClusterId", "/ray.rpc.NodeManagerService/GetNodeStats",
           "/ray.rpc.CoreWorkerService/GetCoreWorkerStats", "/ray.rpc.LogService/ListLogs",
           "/ray.rpc.ObjectManagerService/Push")


def _listeners(pids: set[int]) -> set[tuple[str, int, str]]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split()
        host, port = parts[3].rsplit(":", 1)
        for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line):
            if int(pid) in pids:
                found.add((host, int(port), name))
    return found


def _probe(host: str, port: int) -> dict[str, str]:
    """What a client without the token gets from each gRPC method, and from HTTP GET /."""
    target = "127.0.0.1" if host in ("*", "0.0.0.0", "[::]") else host.strip("[]")
    answers = {}
    with grpc.insecure_channel(f"{target}:{port}") as channel:
        for method in METHODS:
            try:
                channel.unary_unary(method)(b"", timeout=3)
                answers[method] = "OK"
            except grpc.RpcError as e:
                answers[method] = e.code().name
    try:
        answers["http"] = str(urllib.request.urlopen(f"http://{target}:{port}/", timeout=3)
                              .status)
    except urllib.error.HTTPError as e:
        answers["http"] = str(e.code)
    except Exception as e:  # not an HTTP server at all
        answers["http"] = type(e).__name__
    return answers


def _refuses(answers: dict[str, str]) -> bool:
    grpc_answers = [v for k, v in answers.items() if k != "http"]
    return ("OK" not in grpc_answers and "UNAUTHENTICATED" in grpc_answers) or \
        answers["http"] in ("401", "403")


def test_every_ray_listener_is_loopback_only_or_refuses_a_client_without_the_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    search = subprocess.Popen(
        [sys.executable, "-m", "budgetune.cli", "search", "--space", "quick", "--budget",
         "2e11", "--num-samples", "3", "--no-size-limit", "--results", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, exposed = {}, {}
    try:
        while search.poll() is None:
            for host, port, name in _listeners(descendants(search.pid)) - set(seen):
                seen[(host, port, name)] = None
                if host not in LOOPBACK:
                    exposed[(host, port, name)] = _probe(host, port)
            time.sleep(0.5)
        output = search.stdout.read()
    finally:
        search.kill()
    assert search.returncode == 0, output
    print("listeners seen:", sorted(seen), "beyond loopback:", exposed)
    names = {name for _, _, name in seen}
    assert {"gcs_server", "raylet"} <= names, seen  # the test saw Ray's own servers
    assert any(name.startswith("ray::") for name in names)  # and the trials' workers
    answered = {k: v for k, v in exposed.items() if not _refuses(v)}
    assert not answered, f"listening beyond loopback and answering without the token: {answered}"
