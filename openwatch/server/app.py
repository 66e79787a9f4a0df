"""Startup, the schema guard and shutdown for ``openwatch serve``.

Order: TLS material, the listening socket, the database (retried briefly) and its schema version,
then serve until SIGTERM/SIGINT. Every refusal is one line on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import signal
import socket
import ssl
import sys
import time
from asyncio import sslproto
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import psycopg

from openwatch import buildinfo, config, pgsupport
from openwatch.migrations import source
from openwatch.server import api, asgi, db, limits
from openwatch.server.logs import LogBridge, Logger

if TYPE_CHECKING:
    from hypercorn.config import Config as HypercornConfig

CONNECT_BUDGET = 5.0  # seconds of retrying an unreachable database at startup
POLL_INTERVAL = 0.1  # how often the event loop looks for a shutdown request
DRAIN_TIMEOUT = 0.3  # how long in-flight requests get at shutdown (a stop must take < 1 s)
BACKLOG = 1024


class StopRequest:
    """The request to stop: set from a signal handler, from the accept thread, or by a test.

    Not a ``threading.Event``: a Python signal handler runs in the main thread between two bytecodes,
    possibly while that thread is inside ``Event.wait()`` holding the Event's (non-reentrant) lock, and
    ``Event.set()`` in the handler then waits for that lock forever. Under systemd a one-file binary
    gets SIGTERM twice (from systemd and forwarded by the PyInstaller bootloader) a few microseconds
    apart: the second handler lands in that window and ``systemctl stop`` hangs until SIGKILL.
    ``set`` takes no lock: a flag and a byte into a non-blocking pipe, which ``wait`` selects on.

    The pipe is also the signal wakeup fd (``watch_signals``): the kernel may deliver SIGTERM to any
    thread, and then the main thread's select() is not interrupted; the C-level handler's wakeup byte
    wakes it, and the Python handler runs at its next bytecode. ``wait`` also never blocks longer than
    ``POLL`` at a time.
    """

    POLL = 0.5

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._set = False

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):  # the pipe is full (the waiter is awake already) or closed
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self._set

    def watch_signals(self) -> int:
        """Make the pipe the signal wakeup fd (main thread only); returns the previous one."""
        return signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False after ``timeout`` seconds. A signal's handler wakes it at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = self.POLL if deadline is None else min(self.POLL, deadline - time.monotonic())
            if left <= 0:
                break
            ready, _, _ = select.select([self._read], [], [], left)
            if ready and not self._set:
                # a signal's wakeup byte: its Python handler runs before the loop tests the flag again
                with contextlib.suppress(OSError):
                    os.read(self._read, 512)
        return self._set

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class StartupError(Exception):
    """A fatal startup problem; the message is the one line after ``openwatch serve: ``."""


class _EncryptedKey(Exception):
    pass


def _refuse_passphrase() -> bytes:
    raise _EncryptedKey


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context, or StartupError naming the file at fault."""
    for name, path, marker, what in (
        ("server.tls_cert", cert, b"-----BEGIN CERTIFICATE-----", "a PEM certificate"),
        ("server.tls_key", key, b"PRIVATE KEY-----", "a PEM private key"),
    ):
        if not path:
            raise StartupError(f"{name} is empty")
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise StartupError(f"{name} {path}: no such file") from None
        except IsADirectoryError:
            raise StartupError(f"{name} {path}: is a directory") from None
        except PermissionError:
            raise StartupError(f"{name} {path}: permission denied (not readable by this user)") from None
        except OSError as exc:
            raise StartupError(f"{name} {path}: {exc.strerror or exc}") from None
        if marker not in data:
            raise StartupError(f"{name} {path}: not {what}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key, password=_refuse_passphrase)
    except _EncryptedKey:
        raise StartupError(
            f"server.tls_key {key}: the key is encrypted; a service cannot prompt for its passphrase"
        ) from None
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if reason == "KEY_VALUES_MISMATCH":
            reason = "the key does not belong to the certificate"
        raise StartupError(f"server.tls_cert {cert} / server.tls_key {key}: {reason}") from None
    return ctx


def hypercorn_config(tls: ssl.SSLContext, log: Logger) -> HypercornConfig:
    """Hypercorn's settings: limits.py's bounds, our TLS context, its logs through ours."""
    from hypercorn.config import Config

    class _Config(Config):
        # hypercorn would build its own context from file names; ours is already checked and loaded
        ssl_enabled = True

        def create_ssl_context(self) -> ssl.SSLContext:
            return tls

    hc = _Config()
    hc.keep_alive_timeout = limits.HEADER_DEADLINE  # also runs while a request's headers arrive
    hc.ssl_handshake_timeout = limits.HEADER_DEADLINE
    hc.h11_max_incomplete_size = limits.MAX_HEADER_BYTES
    hc.graceful_timeout = DRAIN_TIMEOUT
    hc.backlog = BACKLOG
    hc.alpn_protocols = ["http/1.1"]
    hc.include_server_header = False
    hc.accesslog = None
    hc.errorlog = LogBridge(log).logger
    return hc


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise StartupError(f"server.listen {listen!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def bind(listen: str, backlog: int, cap: int) -> limits.CappedListener:
    """The listening socket, bound here so that a refusal is one line naming the address."""
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"listen {listen}: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = limits.CappedListener(family, socket.SOCK_STREAM)
    sock.set_cap(cap)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.EACCES and port < 1024:
            reason += " (ports below 1024 need CAP_NET_BIND_SERVICE)"
        raise StartupError(f"listen {listen}: {reason}") from None
    sock.setblocking(False)
    return sock


def check_schema(dsn: str, expected: int, stop: db.Stop, log: Logger) -> psycopg.Connection | None:
    """Connect (retrying briefly) and refuse a schema other than ``expected``; None if stopped."""
    try:
        conn = db.connect_with_retry(dsn, CONNECT_BUDGET, stop)
    except db.DatabaseUnavailable as exc:
        raise StartupError(f"connect {config.mask_dsn(dsn)}: {exc}") from None
    if conn is None:
        return None
    try:
        warning = pgsupport.check(conn.info.server_version)
    except pgsupport.TooOld as exc:
        conn.close()
        raise StartupError(str(exc)) from None
    if warning:
        log.warn(warning)
    try:
        current = db.schema_version(conn)
    except Exception as exc:
        conn.close()
        reason = db.one_line(exc, dsn)
        raise StartupError(f"read schema version from {config.mask_dsn(dsn)}: {reason}") from None
    problem = db.schema_problem(current, expected)
    if problem:
        conn.close()
        raise StartupError(problem)
    log.info("schema ok", schema_version=current)
    return conn


def serve(cfg: config.Config) -> int:
    log = Logger(cfg.logging.level, cfg.logging.format)
    stop = StopRequest()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # nothing else here: no lock may be taken (see StopRequest), so no logging either

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_fd = stop.watch_signals()
    try:
        return _serve(cfg, log, stop)
    except StartupError as exc:
        print(f"openwatch serve: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(previous_fd)
        stop.close()


def _serve(cfg: config.Config, log: Logger, stop: StopRequest) -> int:
    dsn = cfg.database.dsn
    log.info(
        "openwatch starting",
        version=buildinfo.version,
        commit=buildinfo.commit,
        listen=cfg.server.listen,
        database=config.mask_dsn(dsn),
    )
    try:
        migrations = source.embedded()
    except source.SourceError as exc:
        raise StartupError(f"embedded migrations: {exc}") from None
    tls = tls_context(cfg.server.tls_cert, cfg.server.tls_key)
    tls.set_alpn_protocols(["http/1.1"])  # HTTP/1.1 only: one parser (h11) to reason about
    pool = db.Pool(dsn, cfg.database.max_connections)
    api_ = api.Api(pool, migrations.head, len(migrations.files))
    sock = bind(cfg.server.listen, BACKLOG, cfg.server.max_connections)
    app = asgi.App(api_, asgi.load_ui(), log, cfg.database.max_connections + limits.DB_WORKERS_EXTRA)
    try:
        conn = check_schema(dsn, migrations.head, stop, log)
        if conn is None:
            log.info("stopped before serving")
            return 0
        pool.adopt(conn)
        return _run_until_stopped(app, sock, tls, log, stop, cfg.server.listen)
    finally:
        sock.close()
        app.close()
        pool.close()


def _run_until_stopped(
    app: asgi.App,
    sock: limits.CappedListener,
    tls: ssl.SSLContext,
    log: Logger,
    stop: StopRequest,
    listen: str,
) -> int:
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.config import Sockets
    from hypercorn.utils import wrap_app

    from openwatch.server import strict_h11

    strict_h11.install()  # a repeated Content-Length is refused, not folded into one

    async def stopped() -> None:
        while not stop.wait(0):  # a signal's Python handler runs between the loop's turns
            await asyncio.sleep(POLL_INTERVAL)
        log.info("shutting down")

    def loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # asyncio's own reports (a connection task cancelled at shutdown, ...): one escaped debug line,
        # never a traceback on stderr
        exc = context.get("exception")
        log.debug("asyncio", detail=str(context.get("message", "")), error=type(exc).__name__ if exc else "-")

    # asyncio's TLS gives every connection a 256 KiB read buffer, filled with zeros, so resident: with
    # 2,000 slow clients that alone was 500 MB. A TLS record carries at most 16 KiB of plaintext, so
    # 32 KiB loses nothing (class attribute, read per instance; this process runs nothing else on TLS).
    sslproto.SSLProtocol.max_size = limits.TLS_READ_BUFFER

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(loop_error)
        log.info("listening", listen=listen, url=f"https://{listen}/")
        serving = asyncio.create_task(
            worker_serve(
                wrap_app(app, limits.MAX_BODY, "asgi"),  # type: ignore[arg-type]  # ASGI 3, loosely typed
                hypercorn_config(tls, log),
                sockets=Sockets(secure_sockets=[sock], insecure_sockets=[], quic_sockets=[]),
                shutdown_trigger=stopped,
            )
        )
        while not serving.done() and not stop.is_set():
            await asyncio.wait([serving], timeout=POLL_INTERVAL)
        # hypercorn drains for graceful_timeout, then waits for every connection to be gone (an idle
        # keep-alive one may linger): past the drain time, whatever is left is cut off.
        done, _ = await asyncio.wait([serving], timeout=DRAIN_TIMEOUT + 0.2)
        if not done:
            serving.cancel()
            log.info("shutdown: idle connections closed")
        elif serving.exception() is not None:
            raise serving.exception()  # type: ignore[misc]

    try:
        asyncio.run(main())
    except Exception as exc:
        log.error("server failed", error=f"{type(exc).__name__}: {exc}")
        raise StartupError(f"server failed: {exc}") from None
    log.info("stopped")
    return 0
