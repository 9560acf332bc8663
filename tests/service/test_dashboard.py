"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright).

Named to run first in this folder: it loads the page while the session's search is writing.
The screenshot is kept in $BUDGETUNE_ARTIFACTS (default ./test-artifacts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("BUDGETUNE_ARTIFACTS", ROOT / "test-artifacts"))
WAIT_MS = 240_000
IMAGE_LOADED = """name => { const i = document.getElementById('plot-' + name);
                            return i !== null && i.complete && i.naturalWidth > 0; }"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: `apt-get install chromium` (scripts/test.sh "
                    "installs it in CI)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _status_text(page) -> str:
    return page.inner_text("#status tbody")


def test_page_updates_while_a_search_writes_and_shows_the_frontier(browser, live_search,
                                                                    server):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(server.url + "/")
    assert live_search.proc.poll() is None, "the search ended before the page loaded"
    page_id = page.evaluate("window.budgetunePageId")
    page.wait_for_function("() => document.getElementById('version').textContent !== '-'")
    first = _status_text(page)
    # 1. The status table changes while the search runs, without a reload.
    page.wait_for_function("first => document.querySelector('#status tbody').innerText "
                           "!== first", arg=first, timeout=WAIT_MS)
    changed_while_running = live_search.proc.poll() is None
    assert page.evaluate("window.budgetunePageId") == page_id, "the page reloaded"
    assert _status_text(page) != first
    assert changed_while_running, "the table changed only after the search ended"
    # 2. Once the search is done, the frontier plot is shown (an <img> that decoded).
    live_search.wait()
    page.wait_for_function("() => document.querySelector('#searches tbody').innerText"
                           ".includes('finished')", timeout=WAIT_MS)
    for name in ("gpt2_frontier", "gpt2_size_quality"):
        page.wait_for_function(IMAGE_LOADED, arg=name, timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelector('#best tbody').innerText"
                           ".includes('gpt2')", timeout=WAIT_MS)
    assert page.evaluate("window.budgetunePageId") == page_id, "the page reloaded"
    assert "budget-2e+11" in _status_text(page)
    # 3. The form asks /api/best; a bad budget gets the server's one-line error.
    page.fill("#ask input[name=budget]", "2e11")
    page.click("#ask button")
    page.wait_for_function("() => document.getElementById('answer').innerText.includes('gpt2')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.fill("#ask input[name=budget]", "-1")
    page.click("#ask button")
    page.wait_for_function("() => document.getElementById('answer').innerText"
                           ".includes('must be a positive finite number')")
    page.close()
    # Nothing was fetched from anywhere but the server (no CDN).
    assert requested and all(u.startswith(server.url + "/") or u.startswith("blob:")
                             for u in requested), requested


def test_api_docs_render_without_a_cdn(browser, server):
    page = browser.new_page()
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=60_000)  # Swagger UI drew routes
    assert "/api/best" in page.inner_text(".swagger-ui")
    assert all(u.startswith(server.url + "/") or u.startswith("data:") for u in requested), \
        requested
    page.close()


def test_with_a_token_the_page_opens_from_the_fragment_and_sends_the_header(browser, guarded):
    token = (guarded.folder / "token").read_text().strip()
    page = browser.new_page()
    headers = []
    page.on("request", lambda r: headers.append((r.url, r.headers.get("authorization"))))
    page.goto(guarded.url + "/")  # no token: the static page that says how to give one
    assert "#token=TOKEN" in page.inner_text("body")
    page.close()
    page = browser.new_page()
    page.on("request", lambda r: headers.append((r.url, r.headers.get("authorization"))))
    page.goto(guarded.url + "/#token=" + token)
    page.wait_for_function("() => { const t = document.querySelector('#status tbody');"
                           " return t !== null && t.innerText.includes('budget-2e+11'); }",
                           timeout=WAIT_MS)
    page.wait_for_function(IMAGE_LOADED, arg="gpt2_frontier", timeout=WAIT_MS)
    api = [h for url, h in headers if "/api/" in url]
    assert api and all(h == f"Bearer {token}" for h in api), headers
    assert not any(token in url for url, _ in headers if "#" not in url)
    page.close()
