"""The JSON API of a real `budgetune serve` process over a real quick search's tables."""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetune.results import ResultsWriter, read_table
from budgetune.service import AnswerCache, tables_version
from tests.service.conftest import SEARCH_BUDGET, budgetune

PATHS = ["/", "/docs", "/openapi.json", "/api/version", "/api/searches", "/api/status",
         "/api/status?search=q", f"/api/best?budget={SEARCH_BUDGET}", "/api/frontier",
         "/api/frontier?model=gpt2", "/api/plots", "/api/plots/gpt2_frontier.png",
         "/api/plots/gpt2_size_quality.svg"]
VALID_PLOT = re.compile(r"gpt2_(frontier|isoflops|size_quality|share_fraction)\.(png|svg)")
SLOW = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _files(folder) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and "tune" not in p.parts}


def test_every_endpoint_answers_on_a_real_search(finished, live_search):
    before = _files(live_search.results)
    for path in PATHS:
        status, headers, body = finished.get(path)
        assert status == 200, (path, body)
        kind = headers["content-type"]
        if kind == "application/json":
            json.loads(body)
    searches = json.loads(finished.get("/api/searches")[2])["searches"]
    assert [(s["name"], s["state"], s["space"]) for s in searches] == [("q", "finished",
                                                                        "quick")]
    assert sum(searches[0]["trials"].values()) == 3
    frontier = json.loads(finished.get("/api/frontier")[2])
    assert frontier["model"] == "gpt2" and frontier["measured_budgets"] == [2e11]
    # One budget: L(C) is not quoted as a number, and the answer says why.
    assert frontier["compute_fit"] is None and "1 measured budget" in frontier["compute_reason"]
    assert len(frontier["points"]) == searches[0]["trials"].get("done", 0)
    assert frontier["envelope"]["flops"] == sorted(frontier["envelope"]["flops"])
    assert finished.get("/api/plots/gpt2_frontier.png")[2][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in finished.get("/api/plots/gpt2_size_quality.svg")[2][:1000]
    assert b"swagger" in finished.get("/docs")[2].lower()
    api = json.loads(finished.get("/openapi.json")[2])["paths"]
    assert {"/api/best", "/api/status", "/api/searches", "/api/frontier",
            "/api/plots/{filename}"} <= set(api)
    assert b"budgetune" in finished.get("/")[2]
    # Read-only: nothing in the results folder was written or touched.
    assert _files(live_search.results) == before


def test_best_and_status_are_the_cli_output_byte_for_byte(finished, live_search):
    results = str(live_search.results)
    for query, flags in [(f"budget={SEARCH_BUDGET}", ["--budget", SEARCH_BUDGET]),
                         ("budget=2e11&max_mb=2",  # README.md's example
                          ["--budget", "2e11", "--max-mb", "2"])]:
        cli = budgetune("best", "--json", "--results", results, *flags)
        assert cli.returncode == 0, cli.stderr
        status, _, body = finished.get("/api/best?" + query)
        assert status == 200 and body == cli.stdout, query
    cli = budgetune("status", "--json", "--results", results)
    assert finished.get("/api/status")[2] == cli.stdout
    cli = budgetune("status", "--json", "--results", results, "--name", "q")
    assert finished.get("/api/status?search=q")[2] == cli.stdout


def test_a_host_header_not_of_loopback_is_refused(finished):
    """Without a token, a page elsewhere must not read the service by DNS rebinding."""
    assert finished.get("/api/searches", {"Host": "evil.example:8421"})[0] == 400
    assert finished.get("/api/searches", {"Host": f"localhost:{finished.port}"})[0] == 200


def test_no_route_accepts_a_method_that_could_write(finished):
    for path in PATHS:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, _, body = finished.get(path.split("?")[0], method=method)
            assert status == 405, (method, path, status)
            assert b"\n" not in body.rstrip(b"\n")


def test_answers_are_cached_by_the_tables_version(live_search, finished, tmp_path):
    live_search.wait()
    copy = tmp_path / "results"
    shutil.copytree(live_search.results / "q", copy / "q", ignore=shutil.ignore_patterns("tune"))
    cache, calls = AnswerCache(), []

    def compute():
        calls.append(1)
        return len(calls)

    v1 = tables_version(copy)
    assert cache.get(v1, ("k",), compute) == cache.get(tables_version(copy), ("k",), compute)
    assert len(calls) == 1
    with ResultsWriter(copy, "q") as w:  # a flush: rows written again, one more part file
        w.append("trials", read_table(copy / "q", "trials").to_dict("records"))
    v2 = tables_version(copy)
    assert v2 != v1
    assert cache.get(v2, ("k",), compute) == 2
    assert cache.get(v1, ("k",), compute) == 3  # a request begun before the flush: not filed
    assert cache.get(v2, ("k",), compute) == 2


def _refused(server, path: str) -> None:
    status, headers, body = server.get(path)
    assert status in (400, 404), (path, status, body[:200])
    assert headers["content-type"] == "application/json"
    assert body.endswith(b"\n") and b"\n" not in body[:-1], body
    assert "error" in json.loads(body) and b"Traceback" not in body


def _not_positive_finite(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return True
    return not (0 < value < float("inf"))


numbers = st.one_of(st.sampled_from(["0", "-1", "nan", "NaN", "inf", "-inf", "1e400", "", " ",
                                     "1e12x", "0x10", "--1"]),
                    st.floats().map(repr), st.text(max_size=12))
bad_numbers = numbers.filter(_not_positive_finite)


@SLOW
@given(budget=bad_numbers)
def test_a_budget_that_is_not_a_positive_finite_number_is_a_one_line_400(finished, budget):
    _refused(finished, "/api/best?budget=" + urllib.parse.quote(budget))


@SLOW
@given(max_mb=bad_numbers.filter(lambda s: s != ""))
def test_a_malformed_max_mb_is_a_one_line_400(finished, max_mb):
    _refused(finished, f"/api/best?budget={SEARCH_BUDGET}&max_mb=" + urllib.parse.quote(max_mb))


@SLOW
@given(search=st.text(min_size=1, max_size=20).filter(lambda s: s != "q"),
       endpoint=st.sampled_from(["/api/status", "/api/plots", "/api/frontier",
                                 f"/api/best?budget={SEARCH_BUDGET}"]))
def test_an_unknown_search_is_a_one_line_400(finished, search, endpoint):
    sep = "&" if "?" in endpoint else "?"
    _refused(finished, f"{endpoint}{sep}search=" + urllib.parse.quote(search))


traversal = st.lists(st.sampled_from(["..", "%2e%2e", ".%2E", "etc", "passwd", "q",
                                      "search.json", "reports", "/", "%2f", "%5c", "\\",
                                      "gpt2_frontier", ".png", ".svg", "%00", "~"]),
                     min_size=1, max_size=8).map("".join)


@SLOW
@given(name=st.one_of(traversal, st.text(max_size=30).map(urllib.parse.quote)))
def test_plot_names_are_looked_up_never_joined_into_paths(finished, name):
    if VALID_PLOT.fullmatch(urllib.parse.unquote(name)):
        return
    _refused(finished, "/api/plots/" + name)
