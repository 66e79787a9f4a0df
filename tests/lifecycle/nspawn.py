"""A real systemd as PID 1 in a throwaway copy of a cached root (systemd-nspawn -b).

The recipe and why each flag is there (see shared/reference/systemd-boot.md):

* ``--register=no --keep-unit``: the host has neither machined nor a systemd PID 1 to make a scope.
* ``--private-network``: the container gets its own loopback, so the service's 8443 and the
  container's PostgreSQL never clash with the host or with another test.
* ``--console=read-only``: works without a TTY and keeps the boot log (``--console=pipe`` loses it).
* ``--volatile=overlay``: the cached base is the read-only lower layer, every write goes to a tmpfs.

Commands run in the container through ``nsenter`` into the namespaces of its PID 1 (``machinectl`` and
``systemd-run -M`` need a host bus). PID 1 is the child of nspawn whose ``NSpid:`` ends in 1: nspawn forks
short-lived helpers too, and taking the first child races.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from .roots import CLEAN_ENV, WORK, CommandFailed, mounts_under, run

IN_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "SYSTEMD_PAGER=",
]


class Container:
    def __init__(self, base: Path, *, binds_ro: dict[Path, str] | None = None, name: str = "ow") -> None:
        self.base = base
        self.binds_ro = binds_ro or {}
        self.machine = f"{name}-{uuid.uuid4().hex[:8]}"
        WORK.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=WORK))
        self.console_log = self.workdir / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Container:
        try:
            self.boot()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def boot(self, timeout: float = 60) -> None:
        cmd = [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.base}",
            "--volatile=overlay",
            f"--machine={self.machine}",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--console=read-only",
        ]
        cmd += [f"--bind-ro={host}:{inner}" for host, inner in self.binds_ro.items()]
        with open(self.console_log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=CLEAN_ENV
            )
        deadline = time.monotonic() + timeout
        while not self.leader:
            self._check_alive()
            self.leader = self._find_leader()
            if time.monotonic() > deadline:
                raise AssertionError(f"container PID 1 never appeared\n{self.console()}")
            time.sleep(0.05)
        while True:
            self._check_alive()
            try:
                exe = os.readlink(f"/proc/{self.leader}/exe")
                ready = (
                    exe.endswith("/systemd")
                    and Path(f"/proc/{self.leader}/root/run/systemd/private").exists()
                )
            except OSError:
                ready = False
            if ready:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"systemd did not come up\n{self.console()}")
            time.sleep(0.05)
        state = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=timeout)
        if state.stdout.strip() != "running":
            failed = self.run("systemctl", "--failed", "--no-legend", check=False).stdout
            raise AssertionError(
                f"system is {state.stdout.strip()!r}; failed units:\n{failed}\n{self.console()}"
            )

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.proc.returncode}\n{self.console()}")

    def _find_leader(self) -> int:
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line
                )
            except OSError:
                continue
            nspid = fields.get("NSpid", "").split()
            if fields.get("PPid", "").strip() == str(self.proc.pid) and len(nspid) > 1 and nspid[-1] == "1":
                return int(entry.name)
        return 0

    def shutdown(self, timeout: float = 20) -> None:
        """Power the container off; escalate to SIGTERM (twice: the second is immediate), then SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            if self.leader:
                self.run("systemctl", "poweroff", "--no-block", check=False, timeout=10)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                    self.proc.send_signal(sig)
                    try:
                        self.proc.wait(5)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        left = mounts_under(self.base) + mounts_under(self.workdir)
        assert not left, f"nspawn left mounts on the host: {left}"
        shutil.rmtree(self.workdir, ignore_errors=True)
        # nspawn leaves these empty directories behind when /run is not a tmpfs; remove them only when
        # no other container is running (rmdir fails on a non-empty directory, which is what we want).
        for d in ("/run/systemd/nspawn/propagate", "/run/systemd/nspawn/locks", "/run/systemd/nspawn"):
            with_entries = Path(d)
            if with_entries.is_dir():
                try:
                    with_entries.rmdir()
                except OSError:
                    break

    # ------------------------------------------------------------------ commands

    def run(
        self, *argv: str, check: bool = True, timeout: float = 300, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all its namespaces, a clean environment)."""
        return run(
            ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i", *IN_ENV, *argv],
            check=check,
            timeout=timeout,
            input=input,
        )

    def exec(
        self, *argv: str, user: str | None = None, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        inner = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        return self.run(*inner, check=check, input=input)

    def sh(
        self, script: str, *, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self.run("/bin/sh", "-ec", script, check=check, timeout=timeout)

    def netns(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a HOST program in the container's network namespace only (its loopback, its ports)."""
        return run(["nsenter", "-t", str(self.leader), "-n", "--", *argv], check=check, timeout=timeout)

    def file(self, inner: str) -> Path:
        """A path inside the running container, seen from the host through PID 1's root."""
        return Path(f"/proc/{self.leader}/root") / inner.lstrip("/")

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "-u", unit, "--no-pager", "-o", "cat", check=False).stdout

    def console(self) -> str:
        try:
            return "--- console ---\n" + self.console_log.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def wait_for(self, what: str, probe: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + timeout
        while True:
            proc = self.run(*probe, check=False)
            if proc.returncode == 0:
                return proc
            if time.monotonic() > deadline:
                raise CommandFailed(proc) from AssertionError(f"timed out waiting for {what}")
            time.sleep(0.2)
