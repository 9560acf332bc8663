"""Who may ask: loopback by default; beyond it, only requests carrying the bearer token.

``BearerAuth`` is plain ASGI middleware in front of every route (the page, the API, the OpenAPI
docs): a request without ``Authorization: Bearer TOKEN`` gets 401, compared in constant time
(``hmac.compare_digest``). The token never appears in a URL the server sees: the page takes it
from the ``#token=`` fragment, which browsers do not send, and adds the header to its requests.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from pathlib import Path

LOOPBACK_NAMES = ("localhost",)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")  # Host headers served without a token
BOOT_PAGE = "boot.html"  # static, holds no data: fetches the page with the token, then shows it


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; 0.0.0.0 and :: are every interface."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: str | Path) -> str:
    """The token file's stripped content; a missing, unreadable or empty file is refused."""
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise ValueError(f"The token file {str(path)!r} cannot be read ({reason}); pass "
                         "--token-file with a readable file holding the token.") from None
    if not token:
        raise ValueError(f"The token file {str(path)!r} is empty; write a token into it, e.g. "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`.")
    if any(c.isspace() for c in token):
        raise ValueError(f"The token in {str(path)!r} holds whitespace; use one word.")
    return token


def check_bind(host: str, token_file: str | None) -> None:
    if token_file is None and not is_loopback(host):
        raise ValueError(f"The value of `host` is {host!r}, which is reachable beyond this "
                         "machine; pass --token-file FILE to require a bearer token, or bind "
                         "127.0.0.1 (the default).")


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app, token: str, boot_page: bytes):
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._boot_page = boot_page

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            return await self.app(scope, receive, send)
        if scope["path"] == "/" and not given:  # a browser opening the page: the boot page
            body, kind = self._boot_page, b"text/html; charset=utf-8"
        else:
            body = json.dumps({"error": "A bearer token is required: send the header "
                               "`Authorization: Bearer TOKEN`."}).encode() + b"\n"
            kind = b"application/json"
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", kind), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="budgetune"'),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
