"""Startup, the schema guard and shutdown for ``openwatch serve``.

Order: TLS material, the listening socket, the database (retried briefly) and its schema version,
then serve until SIGTERM/SIGINT. Every refusal is one line on stderr and exit 1.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import psycopg

from openwatch import buildinfo, config, pgsupport
from openwatch.migrations import source
from openwatch.server import api, db, handler
from openwatch.server.logs import Logger

CONNECT_BUDGET = 5.0  # seconds of retrying an unreachable database at startup
POLL_INTERVAL = 0.1  # how often the accept loop looks for a shutdown request
DRAIN_TIMEOUT = 0.5  # how long in-flight requests get at shutdown


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


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        raise StartupError(f"server.listen {listen!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def bind(listen: str, tls: ssl.SSLContext, api_: api.Api, log: Logger) -> handler.Server:
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"listen {listen}: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    server = handler.Server(address, family, tls, api_, handler.load_ui(), log)
    try:
        server.server_bind()
        server.server_activate()
    except OSError as exc:
        server.server_close()
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.EACCES and port < 1024:
            reason += " (ports below 1024 need CAP_NET_BIND_SERVICE)"
        raise StartupError(f"listen {listen}: {reason}") from None
    return server


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
    pool = db.Pool(dsn, cfg.database.max_connections)
    api_ = api.Api(pool, migrations.head, len(migrations.files))
    server = bind(cfg.server.listen, tls, api_, log)
    try:
        conn = check_schema(dsn, migrations.head, stop, log)
        if conn is None:
            log.info("stopped before serving")
            return 0
        pool.adopt(conn)
        return _run_until_stopped(server, log, stop, cfg.server.listen)
    finally:
        server.server_close()
        pool.close()


def _run_until_stopped(server: handler.Server, log: Logger, stop: StopRequest, listen: str) -> int:
    failure: list[BaseException] = []

    def loop() -> None:
        try:
            server.serve_forever(poll_interval=POLL_INTERVAL)
        except BaseException as exc:
            failure.append(exc)
            stop.set()

    thread = threading.Thread(target=loop, name="accept", daemon=True)
    thread.start()
    log.info("listening", listen=listen, url=f"https://{listen}/")
    stop.wait()
    if failure:
        log.error("server failed", error=f"{type(failure[0]).__name__}: {failure[0]}")
        raise StartupError(f"server failed: {failure[0]}")
    log.info("shutting down")
    server.draining = True
    server.shutdown()
    thread.join()
    if not server.wait_idle(DRAIN_TIMEOUT):
        log.warn("shutdown: requests still running were cut off")
    log.info("stopped")
    return 0
