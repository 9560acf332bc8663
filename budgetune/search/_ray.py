"""Starting or joining Ray, safely by default.

Ray runs whatever its clients send, so a local instance that budgetune starts turns on Ray's
token authentication (``RAY_AUTH_MODE=token``: every client must present the token kept in
``~/.ray/auth_token``) and keeps every server on 127.0.0.1 (``secure_environment``). See
SECURITY.md for what a cluster node still opens on all interfaces and why token
authentication covers it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
_LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps to loopback addresses


def _require_ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency, but say how
        raise ValueError("The search needs Ray: pip install 'ray[tune,default]==2.60.0'.") from e
    return ray


def token_path() -> Path:
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def ensure_token() -> Path | None:
    """Make a token as Ray's ``ray get-auth-token --generate`` does (256 random bits, in
    ~/.ray/auth_token), readable by this user only, unless one is already configured."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return None
    path = token_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path


def secure_environment(local: bool = False) -> None:
    """Token authentication for everything this process starts or joins; for a ``local``
    instance (no cluster address), loopback addresses. Ray reads both when it is first
    imported, so call this before."""
    if local and "ray" not in sys.modules:
        # Ray replaces 127.0.0.1 by the machine's routable address (services.
        # resolve_ip_for_localhost) unless it believes it cannot form clusters, as on macOS.
        # A local instance has no other node, so say so: its servers then bind to loopback.
        os.environ.setdefault(_LOCAL_ONLY, "0")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report: no network
    if os.environ["RAY_AUTH_MODE"] == "token":
        ensure_token()


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: the one given, else $RAY_ADDRESS (set for a Ray Job's driver);
    None means a new local instance."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at a HOST:PORT or ray://HOST:PORT
    address: ``ray.init`` itself keeps retrying an unreachable GCS for about 14 minutes."""
    if not address or address == "auto":
        return
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"The value of `address` is {address!r}, but must be HOST:PORT, "
                         "ray://HOST:PORT or auto.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ValueError(
            f"Cannot reach the Ray cluster at {address!r} ({e.strerror or type(e).__name__}); "
            "start one with `RAY_AUTH_MODE=token ray start --head`, or check the address "
            "(an SSH tunnel for a remote cluster: SECURITY.md)."
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                num_gpus: int | None = None) -> Iterator[dict]:
    """Join the cluster at ``address`` ("auto", "ray://HOST:PORT") or start a local instance;
    yields the cluster's resources and shuts down what it started."""
    address = cluster_address(address)
    secure_environment(local=not address)
    ray = _require_ray()
    if ray.is_initialized():  # a caller (a test, a Ray Job's driver) already connected
        yield ray.cluster_resources()
        return
    kwargs = {"log_to_driver": False, "configure_logging": True, "logging_level": "ERROR"}
    if address:
        check_address(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(
                f"Cannot join the Ray cluster at {address!r} ({first}); start one with "
                "`RAY_AUTH_MODE=token ray start --head`, check the address, and use the same "
                "token (~/.ray/auth_token)."
            ) from None
    else:
        # "local": a new instance, never one a `ray start` left in /tmp/ray/ray_current_cluster
        # (ray.init() joins that, and hangs for minutes if it is dead).
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus,
                 include_dashboard=False, _node_ip_address=LOOPBACK, **kwargs)
        # Its servers have it now; a `ray start --address` this process runs later must not.
        if os.environ.get(_LOCAL_ONLY) == "0":
            del os.environ[_LOCAL_ONLY]
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
