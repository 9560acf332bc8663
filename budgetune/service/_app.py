"""The ASGI app of ``budgetune serve``: a read-only JSON API and one dashboard page.

FastAPI (on Starlette) gives the routing, the thread pool that keeps a slow fit from blocking
other requests, and the OpenAPI docs at ``/docs``: Swagger UI, whose script and style come from
the ``fastapi-offline`` package's files and are served here (FastAPI's default page loads them
from a CDN; nothing here is fetched from elsewhere). Every route is a GET; no route writes a file
or starts work. Each answer comes from ``_answers`` and is cached by the tables' version
(``_cache``). Bad input is HTTP 400 with one line of JSON, ``{"error": "..."}``; any other
failure is a 500 with one line naming the error type, never a traceback.
"""

from __future__ import annotations

import json
import logging
import threading
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from budgetune.service import _answers
from budgetune.service._auth import BOOT_PAGE, LOOPBACK_HOSTS, BearerAuth
from budgetune.service._cache import AnswerCache, tables_version

JSON = "application/json"
_log = logging.getLogger("budgetune.service")
_DRAW = threading.Lock()  # matplotlib is not thread-safe, even on separate Figures
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
               "favicon.png": "image/png"}  # looked up by name in fastapi-offline's files


def _static(name: str) -> bytes:
    return resources.files("budgetune.service").joinpath("static", name).read_bytes()


def _error(status: int, message: object) -> Response:
    line = str(message).replace("\r", " ").replace("\n", " ")
    return Response(json.dumps({"error": line}) + "\n", status_code=status, media_type=JSON,
                    headers={"cache-control": "no-store"})


def _json(text: str) -> Response:
    return Response(text, media_type=JSON, headers={"cache-control": "no-store"})


class Service:
    """The results folder, its answer cache, and one method per kind of answer."""

    def __init__(self, results: str | Path):
        self.root = Path(results)
        self.cache = AnswerCache()

    def answer(self, key: tuple, compute):
        version = tables_version(self.root)
        return version, self.cache.get(version, key, compute)

    def results(self, search: str | None, corpus_id: str | None):
        return self.answer(("results", search, corpus_id),
                           lambda: _answers.load(self.root, search, corpus_id))[1]

    def frontiers(self, search: str | None, corpus_id: str | None) -> dict:
        """The fits ``best`` makes, kept for this version of the tables: a new budget asked
        about is a pick over cached recipes, not a new fit."""
        return self.answer(("best-frontiers", search, corpus_id), dict)[1]

    def frontier(self, model: str | None, search: str | None, corpus_id: str | None):
        results = self.results(search, corpus_id)
        model = model or (results.for_model(None).models[0])
        return self.answer(("frontier", model, search, corpus_id),
                           lambda: _answers.frontier_info(self.root, results, model,
                                                          search))[1]


def create_app(results: str | Path, token: str | None = None) -> FastAPI:
    """The app over ``results``; with ``token``, every request must carry it."""
    svc = Service(results)
    app = FastAPI(title="budgetune", version=_version(), redirect_slashes=False,
                  docs_url=None, redoc_url=None,
                  description="Read-only answers from a budgetune results folder: the same "
                  "analysis as the `budgetune` commands.")

    @app.exception_handler(ValueError)
    async def _bad_input(request: Request, exc: ValueError):
        return _error(400, exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_params(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "query")
        return _error(400, f"The parameter `{where}` is invalid: {first.get('msg', '')}.")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return _error(exc.status_code, exc.detail)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        _log.exception("error answering %s", request.url.path)
        return _error(500, f"Internal error ({type(exc).__name__}); see the server's log.")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return HTMLResponse(_static("index.html"), headers={"cache-control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="budgetune API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str):
        if name not in DOCS_ASSETS:
            raise HTTPException(404, "Not Found")
        body = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
        return Response(body, media_type=DOCS_ASSETS[name],
                        headers={"cache-control": "max-age=86400"})

    @app.get("/api/version", summary="The tables' version: changes with every flush")
    def version():
        return _json(json.dumps({"version": tables_version(svc.root)}) + "\n")

    @app.get("/api/searches", summary="The searches in the folder with their state")
    def searches():
        return _json(svc.answer(("searches",), lambda: _answers.searches_json(svc.root))[1])

    @app.get("/api/status", summary="What `budgetune status --json` prints")
    def status(search: str | None = Query(None, description="one search (default: all)")):
        statuses = svc.answer(("status", search),
                              lambda: _answers.statuses_of(svc.root, search))[1]
        return _json(_answers.status_json(svc.root, search, statuses))

    @app.get("/api/best", summary="What `budgetune best --json` prints")
    def best(budget: str = Query(..., description="training FLOPs, a positive number"),
             max_mb: str | None = Query(None, description="size limit, MB (10^6 bytes)"),
             model: str | None = Query(None, description="gpt2 or bert"),
             search: str | None = Query(None, description="one search (`--name`)"),
             corpus_id: str | None = Query(None, description="one corpus (`--corpus-id`)")):
        flops = _answers.parse_positive("budget", budget, required=True)
        mb = _answers.parse_positive("max_mb", max_mb, required=False)
        if model is not None and model not in ("gpt2", "bert"):
            raise ValueError(f"The value of `model` is {model!r}, but must be gpt2 or bert.")
        key = ("best", flops, mb, model, search, corpus_id)
        return _json(svc.answer(key, lambda: _answers.best_json(
            svc.root, flops, mb, model, search, corpus_id, svc.results(search, corpus_id),
            svc.frontiers(search, corpus_id)))[1])

    @app.get("/api/frontier", summary="The fitted laws and the points they rest on")
    def frontier(model: str | None = Query(None, description="gpt2 or bert"),
                 search: str | None = None, corpus_id: str | None = None):
        info = svc.frontier(model, search, corpus_id)
        return _json(svc.answer(("frontier_json", info.model, search, corpus_id),
                                lambda: _answers.frontier_json(info))[1])

    @app.get("/api/plots", summary="The plots there are (names as `budgetune plot` writes)")
    def plot_list(search: str | None = None, corpus_id: str | None = None):
        names = _answers.plot_names(svc.results(search, corpus_id))
        return _json(json.dumps({"plots": names, "formats": list(_answers.PLOT_FORMATS)})
                     + "\n")

    @app.get("/api/plots/{filename}", summary="One plot, drawn on demand (png or svg)",
             response_class=Response)
    def plot(filename: str, search: str | None = None, corpus_id: str | None = None):
        name, _, fmt = filename.rpartition(".")
        results = svc.results(search, corpus_id)

        def draw() -> bytes:
            with _DRAW:
                return _answers.draw_plot(
                    results, lambda m: svc.frontier(m, search, corpus_id), name, fmt)

        body = svc.answer(("plot", name, fmt, search, corpus_id), draw)[1]
        return Response(body, media_type=_answers.PLOT_FORMATS[fmt],
                        headers={"cache-control": "no-store"})

    app.state.service = svc
    if token is not None:
        app.add_middleware(BearerAuth, token=token, boot_page=_static(BOOT_PAGE))
    else:  # loopback without a token: a page on another site must not reach it by DNS rebinding
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK_HOSTS))
    return app


def _version() -> str:
    from budgetune import __version__

    return __version__
