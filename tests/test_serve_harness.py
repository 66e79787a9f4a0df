"""Running ``openwatch serve`` for tests, the UI test and the benchmark: certificates, a free port,
a started server with its output captured, HTTPS requests that trust only the test certificate.

No tests live here. The server runs from source (``python -m openwatch``) unless a binary is given,
e.g. the frozen one: set ``OPENWATCH_TEST_BINARY=/path/to/openwatch`` (or pass ``binary=``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def binary_from_env() -> Path | None:
    value = os.environ.get("OPENWATCH_TEST_BINARY")
    return Path(value).resolve() if value else None


def command(binary: Path | None, *args: str) -> list[str]:
    return [str(binary), *args] if binary else [sys.executable, "-m", "openwatch", *args]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    env.update(extra)
    return env


def make_cert(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=openwatch-test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolation_files(directory: Path) -> list[str]:
    """``--config`` and ``--secrets`` pointing at empty files: the host's /etc/openwatch never leaks in."""
    directory.mkdir(parents=True, exist_ok=True)
    toml, secrets = directory / "openwatch.toml", directory / "secrets.env"
    toml.write_text("")
    secrets.write_text("")
    return ["--config", str(toml), "--secrets", str(secrets)]


def serve_env(dsn: str, port: int, cert: Path, key: Path, **extra: str) -> dict[str, str]:
    env = {
        "OPENWATCH_DATABASE_DSN": dsn,
        "OPENWATCH_SERVER_LISTEN": f"127.0.0.1:{port}",
        "OPENWATCH_SERVER_TLS_CERT": str(cert),
        "OPENWATCH_SERVER_TLS_KEY": str(key),
    }
    env.update(extra)
    return env


def client_context(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert))
    return ctx


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class ServeProcess:
    """A running ``openwatch serve``; its stdout and stderr are collected line by line."""

    argv: list[str]
    env: dict[str, str]
    port: int
    cert: Path
    prefix: list[str] = field(default_factory=list)  # e.g. a wrapper that drops privileges
    token: str | None = None  # sent as Authorization: Bearer on every request() that sets none
    proc: subprocess.Popen[str] | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    def start(self, ready_timeout: float = 30.0) -> ServeProcess:
        self.proc = subprocess.Popen(
            [*self.prefix, *self.argv],
            env=clean_env(self.env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # its own process group: the one-file binary is two processes, and a kill must reach both
            start_new_session=True,
        )
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            reader = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        if ready_timeout:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                self.join_output()
                raise AssertionError(
                    f"serve exited with {self.proc.returncode} before listening:\n{self.output()}"
                )
            try:
                self.request("GET", "/api/v1/version", timeout=2)
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
        raise AssertionError(f"serve not ready after {timeout}s:\n{self.output()}")

    def connection(self, timeout: float = 10) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=client_context(self.cert), timeout=timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
        conn: http.client.HTTPSConnection | None = None,
        auth: bool = True,
    ) -> Response:
        hdrs = dict(headers or {})
        if auth and self.token and "Authorization" not in hdrs and "Cookie" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=data, headers=hdrs)
            resp = c.getresponse()
            payload = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
        finally:
            if own:
                c.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Send ``sig``; (exit code, seconds until the process was gone)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            code = self.proc.wait()
        elapsed = time.monotonic() - started
        self.join_output()
        return code, elapsed

    def kill(self) -> None:
        """Teardown: SIGTERM first (the bootloader then removes its unpacked _MEI directory), then SIGKILL
        to the whole group, which also reaches a child that outlived its main process."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
            self._kill_group()
            self.proc.wait()
        self.join_output()

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def join_output(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)
    stream.close()
