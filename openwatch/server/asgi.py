"""The ASGI application hypercorn serves: strict request checks, the body's size and deadline, routing
to the API (run in a bounded thread pool, with a deadline) and the UI files, the error shape, the
security headers and one log line per request.

HTTP framing (request line, Content-Length syntax, chunked bodies, header size) is h11's job, under
hypercorn; what h11 lets through and this service refuses anyway is checked here: no Host, more than
one Content-Length, Content-Length with Transfer-Encoding. A request refused before its body was read
is answered with ``Connection: close``, so an unread body can never be taken for the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from openwatch.server import api, auth, limits
from openwatch.server.logs import Logger

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HEALTH_DEADLINE = 2.5  # seconds: a hung database makes health answer 503 well within 3 s
CALL_DEADLINE = 8.0  # seconds for any other API call (a login's argon2 check included)
UI_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
_SECURITY = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


def load_ui() -> dict[str, tuple[bytes, str]]:
    """The UI's files by URL path, read once from the package (works frozen with the files added)."""
    from openwatch import ondemand

    ondemand.ensure("openwatch/server/ui/")  # frozen: unpacked on first use (openwatch.ondemand)
    folder = resources.files("openwatch.server").joinpath("ui")
    return {path: (folder.joinpath(name).read_bytes(), ctype) for path, (name, ctype) in UI_FILES.items()}


class _Refused(Exception):
    """A request answered with ``error`` and the connection closed."""

    def __init__(self, error: api.ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class App:
    def __init__(self, api_: api.Api, ui: dict[str, tuple[bytes, str]], log: Logger, workers: int) -> None:
        self.api = api_
        self.routes = api_.routes()
        self.ui = ui
        self.log = log
        # Blocking work (psycopg, argon2) runs here: bounded, so a flood queues instead of spawning threads.
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # websocket: not served; returning without accepting makes hypercorn refuse the handshake

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"] or "/"
        headers = _headers(scope)
        close = False
        extra: dict[str, str] = {}
        try:
            if scope.get("http_version") not in ("1.0", "1.1"):  # h11 parses any N.N as 1.1
                raise _Refused(api.ApiError(505, "http_version_not_supported", "HTTP/1.1 only"))
            _check_framing(headers)
            status, body, ctype, extra = await self._route(method, path, scope, headers, receive)
        except _Refused as refused:
            close = True
            err = refused.error
            status, body, ctype, extra = err.status, _json(err.body()), "application/json", dict(err.headers)
        except api.ApiError as error:
            status, body, ctype = error.status, _json(error.body()), "application/json"
            extra = dict(error.headers)
        except Exception as exc:
            self.log.error("request failed", method=method, path=path, error=type(exc).__name__)
            internal = api.ApiError(500, "internal_error", "internal server error")
            status, body, ctype = 500, _json(internal.body()), "application/json"
        if ctype == "application/json":
            extra.setdefault("Cache-Control", "no-store")
        out = [
            (b"content-type", ctype.encode()),
            (b"content-length", str(len(body)).encode()),
            *_SECURITY,
            *((k.lower().encode(), v.encode()) for k, v in extra.items()),
        ]
        if close:
            out.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        self._log(method, path, status, len(body), started, scope)

    async def _route(
        self, method: str, path: str, scope: Scope, headers: dict[bytes, list[bytes]], receive: Receive
    ) -> tuple[int, bytes, str, dict[str, str]]:
        lookup = "GET" if method == "HEAD" else method
        if path in self.ui:
            if lookup != "GET":
                raise _not_allowed(method, ["GET", "HEAD"])
            data, ctype = self.ui[path]
            return 200, data, ctype, {"Cache-Control": "no-cache"}
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            route = methods.get(lookup)
            if route is None:
                raise _not_allowed(method, sorted({*methods, "HEAD"} if "GET" in methods else methods))
            req = api.Request(
                query=parse_qs(scope["query_string"].decode("latin-1")),
                params=match.groups(),
                ip=_client(scope),
                bearer=_bearer(headers),
                cookie=auth.parse_cookie(_first(headers, b"cookie")),
                user_agent=_first(headers, b"user-agent") or "",
            )
            if route.body:
                req.body = await _read_json(headers, receive)
            deadline = HEALTH_DEADLINE if route.public and lookup == "GET" else CALL_DEADLINE
            reply = await self._call(route, req, deadline)
            return reply.status, _json(reply.body), "application/json", dict(reply.headers)
        raise api.ApiError(404, "not_found", f"no such resource: {path}")

    async def _call(self, route: api.Route, req: api.Request, deadline: float) -> api.Reply:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, self.api.call, route, req)
        try:
            return await asyncio.wait_for(future, deadline)
        except TimeoutError:
            # The thread may stay blocked on a hung database; the pool's bound keeps that finite.
            if route.action == self.api.health:
                return self.api.health_timed_out()
            raise api.ApiError(503, "db_unavailable", "the database did not answer in time") from None

    def _log(self, method: str, path: str, status: int, size: int, started: float, scope: Scope) -> None:
        level = "warn" if status >= 500 else "info"
        if not self.log.enabled(level):
            return
        self.log.log(
            level,
            "request",
            method=method,
            path=path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            bytes=size,
            remote=_client(scope),
        )

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _headers(scope: Scope) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        found.setdefault(bytes(name).lower(), []).append(bytes(value))
    return found


def _first(headers: dict[bytes, list[bytes]], name: bytes) -> str | None:
    values = headers.get(name)
    return values[0].decode("latin-1") if values else None


def _bearer(headers: dict[bytes, list[bytes]]) -> str | None:
    value = _first(headers, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _check_framing(headers: dict[bytes, list[bytes]]) -> None:
    """Refuse (and close) what a proxy in front could frame differently from us."""
    if not headers.get(b"host"):
        raise _Refused(api.ApiError(400, "bad_request", "the Host header is required"))
    lengths = headers.get(b"content-length", [])
    if len(lengths) > 1 or any(b"," in v for v in lengths):
        raise _Refused(api.ApiError(400, "bad_request", "more than one Content-Length"))
    if lengths and b"transfer-encoding" in headers:
        raise _Refused(api.ApiError(400, "bad_request", "Content-Length and Transfer-Encoding together"))


def _not_allowed(method: str, allowed: list[str]) -> api.ApiError:
    allow = ", ".join(allowed)
    return api.ApiError(
        405, "method_not_allowed", f"{method} is not allowed here; use {allow}", headers={"Allow": allow}
    )


async def _discard_body(receive: Receive) -> None:
    """Read a refused body to its end (bounded by DRAIN_LIMIT and the body deadline), keeping none of it.

    Answering while the client is still writing, then closing, makes its kernel reset the connection:
    the client then sees a reset instead of the 413 (seen in CI under load with a 65 KiB body).
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limits.BODY_DEADLINE):
            while True:
                event = await receive()
                if event["type"] == "http.disconnect" or not event.get("more_body", False):
                    return


async def _read_json(headers: dict[bytes, list[bytes]], receive: Receive) -> Any:
    if b"transfer-encoding" in headers:
        raise _Refused(api.ApiError(411, "length_required", "send the body with a Content-Length"))
    lengths = headers.get(b"content-length")
    if not lengths:
        raise _Refused(api.ApiError(411, "length_required", "a JSON body with a Content-Length is required"))
    length = int(lengths[0])  # h11 accepted it: ASCII digits only
    if length > limits.MAX_BODY:
        if length <= limits.DRAIN_LIMIT:
            await _discard_body(receive)
        raise _Refused(
            api.ApiError(413, "payload_too_large", f"the body is {length} bytes; at most {limits.MAX_BODY}")
        )
    ctype, _, params = (_first(headers, b"content-type") or "").partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(limits.BODY_DEADLINE):
            while True:
                event = await receive()
                if event["type"] == "http.disconnect":
                    raise _Refused(api.ApiError(400, "bad_request", "the body is shorter than its length"))
                chunk = event.get("body", b"")
                received += len(chunk)
                if received > length:
                    raise _Refused(api.ApiError(400, "bad_request", "the body is longer than its length"))
                chunks.append(chunk)
                if not event.get("more_body", False):
                    break
    except TimeoutError:
        raise _Refused(
            api.ApiError(408, "request_timeout", f"the body took longer than {limits.BODY_DEADLINE:g} s")
        ) from None
    if received != length:
        raise _Refused(api.ApiError(400, "bad_request", "the body is shorter than its Content-Length"))
    if ctype.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise api.ApiError(
            415, "unsupported_media_type", f"the body must be application/json, got {ctype.strip() or '-'}"
        )
    data = b"".join(chunks)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise api.ApiError(400, "invalid_json", "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        message = f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise api.ApiError(400, "invalid_json", message) from None
    except RecursionError:
        raise api.ApiError(400, "invalid_json", "the body is nested too deeply") from None


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()
