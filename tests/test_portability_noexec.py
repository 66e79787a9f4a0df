"""noexec temporary directories and the service's hardening, simulated with mount namespaces.

Each case runs in ``unshare --mount``: /tmp and /var/tmp become noexec binds of scratch dirs (so that
leftovers can be inspected afterwards), the root can be made read-only (ProtectSystem=strict), /run
a fresh tmpfs with /run/openwatch in it (RuntimeDirectory=, TMPDIR=/run/openwatch as the unit sets),
and the binary runs as root or, through ``setpriv``, as a throwaway uid that exists in no passwd.
The binary is the one frozen in the bullseye build root, with our patched bootloader.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import Database
from test_portability_buildroot import frozen_openwatch_path

import openwatch

pytestmark = [pytest.mark.chroot, pytest.mark.slow]

UID = 54321  # a throwaway unprivileged user: no passwd entry, no home of its own
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ONE_LINE = (
    "openwatch: no executable temporary directory (/tmp, /var/tmp: mounted noexec): set TMPDIR to a "
    "writable directory on an exec mount, e.g. TMPDIR=/var/lib/openwatch/tmp"
)


class Sandbox:
    """Scratch dirs on an exec file system (not under /tmp), owned by UID where the user writes."""

    def __init__(self, base: Path, binary: Path) -> None:
        self.base = base
        for d in ("bin", "tmp", "vartmp", "home", "state", "run", "etc"):
            (base / d).mkdir()
        shutil.copy2(binary, base / "bin" / "openwatch")
        self.binary = base / "bin" / "openwatch"
        for d in ("tmp", "vartmp"):
            (base / d).chmod(0o1777)
        for d in ("home", "state", "run"):
            os.chown(base / d, UID, UID)
        (base / "etc" / "openwatch.toml").write_text("")
        (base / "etc" / "secrets.env").write_text("")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=owtest", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(base / "etc" / "key.pem"), "-out", str(base / "etc" / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
        for f in (base / "etc").iterdir():
            f.chmod(0o644)
        base.chmod(0o755)

    def iso(self) -> list[str]:
        e = self.base / "etc"
        return ["--config", str(e / "openwatch.toml"), "--secrets", str(e / "secrets.env")]

    def leftovers(self) -> list[str]:
        return sorted(
            str(p) for d in ("tmp", "vartmp", "home", "state", "run") for p in (self.base / d).glob("_MEI*")
        )

    def script(self, argv: list[str], *, env: dict[str, str], user: bool, hardened: bool) -> str:
        b = shlex.quote(str(self.base))
        lines = [
            "set -e",
            "mount --make-rprivate /",
            f"mount --bind {b}/tmp /tmp && mount -o remount,bind,noexec,nosuid,nodev /tmp",
            f"mount --bind {b}/vartmp /var/tmp && mount -o remount,bind,noexec,nosuid,nodev /var/tmp",
        ]
        if hardened:
            lines += [
                "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run",
                f"mkdir /run/openwatch && mount --bind {b}/run /run/openwatch",
                "mount -o remount,bind,ro /",  # ProtectSystem=strict: everything else read-only
            ]
        env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in {"PATH": BASE_PATH, **env}.items())
        cmd = " ".join(shlex.quote(a) for a in argv)
        drop = f"setpriv --reuid={UID} --regid={UID} --clear-groups --inh-caps=-all " if user else ""
        lines.append(f"exec {drop}env -i {env_args} {cmd}")
        return "\n".join(lines)

    def popen(
        self, argv: list[str], *, env: dict[str, str], user: bool, hardened: bool
    ) -> subprocess.Popen[str]:
        script = self.script([str(self.binary), *argv], env=env, user=user, hardened=hardened)
        return subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": BASE_PATH},
        )  # fmt: skip

    def run(
        self, *argv: str, env: dict[str, str] | None = None, user: bool = False, hardened: bool = False
    ) -> subprocess.CompletedProcess[str]:
        proc = self.popen(list(argv), env=env or {}, user=user, hardened=hardened)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def box() -> Iterator[Sandbox]:
    base = Path(tempfile.mkdtemp(prefix="ow-noexec-", dir="/var/lib"))
    try:
        yield Sandbox(base, frozen_openwatch_path())
    finally:
        shutil.rmtree(base)


def tls_env(box: Sandbox, **extra: str) -> dict[str, str]:
    e = box.base / "etc"
    return {
        "OPENWATCH_SERVER_TLS_CERT": str(e / "cert.pem"),
        "OPENWATCH_SERVER_TLS_KEY": str(e / "key.pem"),
        **extra,
    }


def test_the_simulation_is_real(box: Sandbox) -> None:
    """In the namespace /tmp really refuses to execute, and the stock loader error is what we replace."""
    shutil.copy2("/bin/true", box.base / "tmp" / "true")
    script = box.script(["/tmp/true"], env={}, user=False, hardened=False)
    direct = subprocess.run(["unshare", "--mount", "/bin/sh", "-c", script], capture_output=True, text=True)
    assert direct.returncode == 126 and "Permission denied" in direct.stderr, direct


@pytest.mark.parametrize("user", [False, True], ids=["root", "unprivileged"])
def test_no_fallback_fails_with_one_line(box: Sandbox, user: bool) -> None:
    for argv in (["--version"], ["check-config", *box.iso()], ["migrate", *box.iso()]):
        res = box.run(*argv, env=tls_env(box), user=user)
        assert (res.returncode, res.stdout, res.stderr) == (1, "", ONE_LINE + "\n"), argv
    assert box.leftovers() == []


def test_explicit_noexec_tmpdir_is_named(box: Sandbox) -> None:
    res = box.run("--version", env={"TMPDIR": "/var/tmp"})
    assert res.returncode == 1
    assert res.stderr.startswith("openwatch: no executable temporary directory (/var/tmp, /tmp, /var/tmp: ")


@pytest.mark.parametrize("user", [False, True], ids=["root", "unprivileged"])
def test_home_fallback_runs_and_cleans_up(box: Sandbox, user: bool) -> None:
    home = str(box.base / "home")
    res = box.run("--version", env={"HOME": home}, user=user)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"openwatch {openwatch.__version__}"
    assert res.stderr == ""
    assert box.leftovers() == []


@pytest.mark.pg
@pytest.mark.parametrize("user", [False, True], ids=["root", "unprivileged"])
def test_tmpdir_on_exec_mount_runs_every_command(box: Sandbox, user: bool, fresh_db: Database) -> None:
    env = tls_env(box, TMPDIR=str(box.base / "state"), OPENWATCH_DATABASE_DSN=fresh_db.dsn)
    assert box.run("--version", env=env, user=user).returncode == 0
    cc = box.run("check-config", *box.iso(), env=env, user=user)
    assert cc.returncode == 0 and cc.stdout.rstrip().endswith("config is valid"), cc.stderr
    ml = box.run("migrate", "list", env=env, user=user)
    assert ml.returncode == 0 and " migrations, schema version " in ml.stdout.splitlines()[-1], ml.stderr
    mg = box.run("migrate", *box.iso(), env=env, user=user)
    assert mg.returncode == 0, mg.stderr
    with psycopg.connect(fresh_db.admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM goose_db_version WHERE version_id > 0").fetchone()[0] > 0
    assert box.leftovers() == []


def test_hardened_unit_version_and_check_config(box: Sandbox) -> None:
    env = tls_env(box, TMPDIR="/run/openwatch", OPENWATCH_DATABASE_DSN="postgres://a:b@127.0.0.1/x")
    for argv in (["--version"], ["check-config", *box.iso()]):
        res = box.run(*argv, env=env, user=True, hardened=True)
        assert res.returncode == 0, (argv, res.stderr)
    # without the unit's TMPDIR, the read-only root and noexec /tmp give the one line, not a loader error
    res = box.run("--version", env={}, user=True, hardened=True)
    assert (res.returncode, res.stderr) == (1, ONE_LINE + "\n")
    assert box.leftovers() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.communicate()[1]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("serve did not listen in time")


@pytest.mark.pg
def test_hardened_serve_runs_and_sigterm_leaves_nothing(box: Sandbox, fresh_db: Database) -> None:
    env = tls_env(box, TMPDIR=str(box.base / "state"), OPENWATCH_DATABASE_DSN=fresh_db.dsn)
    assert box.run("migrate", *box.iso(), env=env).returncode == 0
    port = _free_port()
    env = tls_env(
        box,
        TMPDIR="/run/openwatch",
        OPENWATCH_DATABASE_DSN=fresh_db.dsn,
        OPENWATCH_SERVER_LISTEN=f"127.0.0.1:{port}",
    )
    proc = box.popen(["serve", *box.iso()], env=env, user=True, hardened=True)
    try:
        _wait_port(port, proc)
        assert len(list((box.base / "run").glob("_MEI*"))) == 1  # unpacked where the unit said
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM), proc.returncode
    assert box.leftovers() == []
