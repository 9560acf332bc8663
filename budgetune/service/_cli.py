"""``budgetune serve``: the argparse side. FastAPI and uvicorn are imported only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from budgetune.service._auth import check_bind, read_token

DEFAULT_HOST = "127.0.0.1"  # loopback: beyond it a token is required (SECURITY.md)
DEFAULT_PORT = 8421


def add_serve_command(sub) -> None:
    p = sub.add_parser(
        "serve", help="a read-only HTTP service and dashboard over a results folder",
        description="Serve a results folder over HTTP: the JSON API under /api (best, status, "
        "frontier, plots), its OpenAPI docs at /docs and a dashboard at /. Read-only.")
    p.add_argument("--results", default="results", help="results directory (default ./results)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind (default {DEFAULT_HOST}); any other needs "
                   "--token-file")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--token-file", default=None,
                   help="a file holding a bearer token every request must carry")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"The value of `port` is {args.port}, but must be in [0, 65535].")
    check_bind(args.host, args.token_file)
    token = read_token(args.token_file) if args.token_file is not None else None
    from budgetune.results import search_folders

    search_folders(args.results)  # a missing folder: one line, before the server starts
    try:
        import uvicorn

        from budgetune.service._app import create_app
    except ImportError as e:
        raise ValueError(f"`budgetune serve` needs {e.name}: pip install 'budgetune[serve]'."
                         ) from None
    app = create_app(Path(args.results), token)
    print(f"budgetune serve: {Path(args.results).resolve()} on http://{args.host}:{args.port}/"
          + (" (bearer token required)" if token else ""), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    return 0
