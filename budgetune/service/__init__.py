"""``budgetune serve``: a read-only HTTP service and dashboard over a results folder.

``create_app(results, token=None)`` builds the ASGI app (FastAPI); ``add_serve_command``
registers the subcommand. Every answer goes through ``_answers``, which calls what the
``budgetune`` commands call, and is cached by the tables' version (``_cache``). Only the light
parts load with the CLI: the rest (FastAPI, pandas) on first use.
"""

from budgetune.service._auth import BearerAuth, check_bind, is_loopback, read_token
from budgetune.service._cli import add_serve_command

_LAZY = {"create_app": "_app", "AnswerCache": "_cache", "tables_version": "_cache"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"budgetune.service.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AnswerCache", "BearerAuth", "add_serve_command", "check_bind", "create_app",
           "is_loopback", "read_token", "tables_version"]
