"""HTTP over TLS: the threaded server, request parsing, the error shape, request logs, the UI files."""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openwatch.server import api
from openwatch.server.logs import Logger

MAX_BODY = 64 * 1024
DRAIN_MAX = 1024 * 1024  # a too large body up to this size is read and dropped
IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may sit idle (and a handshake may take)
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
# status -> code for errors raised by http.server itself (bad request line, unknown method, ...)
_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
    505: "http_version_not_supported",
}


def load_ui() -> dict[str, tuple[bytes, str]]:
    """The UI's files by URL path, read once from the package (works frozen with the files added)."""
    folder = resources.files("openwatch.server").joinpath("ui")
    return {path: (folder.joinpath(name).read_bytes(), ctype) for path, (name, ctype) in UI_FILES.items()}


class Server(ThreadingHTTPServer):
    """One thread per connection; the TLS handshake happens in that thread, never in the accept loop."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[Any, ...],
        family: socket.AddressFamily,
        tls: ssl.SSLContext,
        api_: api.Api,
        ui: dict[str, tuple[bytes, str]],
        log: Logger,
    ) -> None:
        self.address_family = family
        super().__init__(address, Handler, bind_and_activate=False)
        self.tls = tls
        self.api = api_
        self.routes = api_.routes()
        self.ui = ui
        self.log = log
        self.draining = False
        self._active = 0
        self._idle = threading.Condition()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host's FQDN (a DNS lookup): not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # A response leaves as several small TLS records (status and headers, then the body); with Nagle on,
        # the last one waited for the client's delayed ACK: ~40 ms added to every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.log.debug("connection error", remote=str(client_address[0]))

    def begin(self) -> None:
        with self._idle:
            self._active += 1

    def end(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "openwatch"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def handle(self) -> None:
        conn: ssl.SSLSocket = self.connection  # Server.get_request wrapped it, handshake deferred
        try:
            conn.do_handshake()
        except (OSError, ValueError) as exc:
            self.server.log.debug("tls handshake failed", remote=self.client_address[0], reason=str(exc))
            return
        super().handle()

    def version_string(self) -> str:
        return self.server_version

    def parse_request(self) -> bool:
        self._started = time.perf_counter()
        return super().parse_request()

    # every method goes through _dispatch, so unknown paths answer 404 and known ones 405
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        self.server.begin()
        try:
            self._route(method)
        except api.ApiError as err:
            self._send_json(err.status, err.body())
        except Exception as exc:
            self.server.log.error(
                "request failed", method=method, path=self._path(), error=type(exc).__name__
            )
            self._send_json(500, api.ApiError(500, "internal_error", "internal server error").body())
        finally:
            self.server.end()

    def _path(self) -> str:
        raw = getattr(self, "path", None)
        return (urlsplit(raw).path or "/") if raw else "-"

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path or "/"
        lookup = "GET" if method == "HEAD" else method
        if path in self.server.ui:
            if lookup != "GET":
                raise self._not_allowed(["GET", "HEAD"])
            body, ctype = self.server.ui[path]
            self._send(200, body, ctype, {"Cache-Control": "no-cache"})
            return
        for pattern, methods in self.server.routes:
            match = pattern.match(path)
            if not match:
                continue
            action = methods.get(lookup)
            if action is None:
                raise self._not_allowed(sorted({*methods, "HEAD"} if "GET" in methods else methods))
            req = api.Request(query=parse_qs(parts.query), params=match.groups())
            if method in ("POST", "PUT", "PATCH"):
                req.body = self._read_json()
            reply = action(req)
            self._send_json(reply.status, reply.body, reply.headers)
            return
        raise api.ApiError(404, "not_found", f"no such resource: {path}")

    def _not_allowed(self, allowed: list[str]) -> api.ApiError:
        self._allow = ", ".join(allowed)
        message = f"{self.command} is not allowed here; use {self._allow}"
        return api.ApiError(405, "method_not_allowed", message)

    def _read_json(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise api.ApiError(411, "length_required", "send the body with a Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise api.ApiError(411, "length_required", "a JSON body with a Content-Length is required")
        if not raw_length.strip().isdigit():
            self.close_connection = True
            raise api.ApiError(400, "bad_request", "Content-Length is not a number")
        length = int(raw_length)
        if length > MAX_BODY:
            self._discard(length)
            raise api.ApiError(413, "payload_too_large", f"the body is {length} bytes; at most {MAX_BODY}")
        data = self.rfile.read(length)
        if len(data) != length:
            self.close_connection = True
            raise api.ApiError(400, "bad_request", "the body is shorter than its Content-Length")
        ctype = self.headers.get_content_type()
        charset = self.headers.get_content_charset("utf-8").lower()
        if ctype != "application/json" or charset not in ("utf-8", "utf8"):
            raise api.ApiError(
                415, "unsupported_media_type", f"the body must be application/json, got {ctype}"
            )
        try:
            return json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise api.ApiError(400, "invalid_json", "the body is not UTF-8") from None
        except json.JSONDecodeError as exc:
            message = f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            raise api.ApiError(400, "invalid_json", message) from None

    def _discard(self, length: int) -> None:
        """Read and drop a too large body so the client sees the answer; past DRAIN_MAX just close."""
        if length > DRAIN_MAX:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                self.close_connection = True
                return
            length -= len(chunk)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unsupported method...) in our JSON shape."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        err = api.ApiError(code, _STATUS_CODES.get(code, "error"), message or phrase)
        if not hasattr(self, "_started"):
            self._started = time.perf_counter()
        if not self.command:
            self.command = "-"
        self._send_json(code, err.body())

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        extra = dict(headers or {})
        extra["Cache-Control"] = "no-store"
        if status == 405 and getattr(self, "_allow", None):
            extra["Allow"] = self._allow
        self._send(status, json.dumps(body).encode(), "application/json", extra)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        if self.server.draining:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(status, len(body))

    def _log(self, status: int, size: int) -> None:
        log = self.server.log
        level = "warn" if status >= 500 else "info"
        if not log.enabled(level):
            return
        log.log(
            level,
            "request",
            method=self.command or "-",
            path=self._path(),
            status=status,
            duration_ms=round((time.perf_counter() - self._started) * 1000, 3),
            bytes=size,
            remote=self.client_address[0],
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _log writes one line per request, in our format

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.debug("http", detail=format % args)
