"""The service under a real systemd (PID 1 in systemd-nspawn): install, migrate, enable --now, HTTPS health,
the sandbox really applied, a clean stop, and the upgrade sequence with and without its migrate step.

PostgreSQL runs INSIDE the container (the cached systemd base has the distribution's cluster, enabled):
the container has its own network namespace, so the operator-style DSN with 127.0.0.1:5432 and a scram
password reaches that cluster exactly as on a real host. Binding the host's socket directory instead would
need a host=/path DSN and peer/uid mapping the operator never sees.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from . import checks, ops
from .nspawn import Container
from .packages import Build

pytestmark = [pytest.mark.chroot, pytest.mark.slow, pytest.mark.usefixtures("timed")]

DB_USER = "ow_test"
DB_PASSWORD = "p&ss w0rd#'\"$x"  # the same shell- and URL-hostile password as tests/conftest.py
DB_NAME = "openwatch"
DSN = f"postgres://{DB_USER}:{quote(DB_PASSWORD, safe='')}@127.0.0.1:5432/{DB_NAME}?sslmode=disable"
UNIT = "openwatch.service"
# directives of the shipped unit that `systemctl show` must report as in force
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "PrivateUsers": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "UMask": "0077",
    "User": "openwatch",
    "Group": "openwatch",
}


def _container(systemd_base: Path, *builds: Build) -> Container:
    binds = {}
    for b in builds:
        binds[b.deb] = f"/root/pkgs/{b.deb.name}"
    return Container(systemd_base, binds_ro=binds, name="ow-sd")


def _database(c: Container) -> None:
    c.wait_for("PostgreSQL", ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"])
    sql = (
        f"CREATE ROLE {DB_USER} LOGIN PASSWORD $pw${DB_PASSWORD}$pw$;\n"
        f"CREATE DATABASE {DB_NAME} OWNER {DB_USER};\n"
    )
    c.run("runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-q", input=sql)


def _container_version(c: Container) -> int | None:
    """The guide's version query, with psql inside the container on the operator's DSN."""
    exists = c.run("psql", DSN, "-Atc", "SELECT to_regclass('goose_db_version') IS NOT NULL").stdout.strip()
    if exists != "t":
        return None
    # the guide's two queries, as written: the newest row is applied and is the maximum
    table = c.run("psql", DSN, "-c", ops.GUIDE_VERSION_QUERY).stdout
    top = table.splitlines()[2].split("|")
    assert top[1].strip() == "t", table
    out = c.run("psql", DSN, "-c", ops.GUIDE_MAX_QUERY).stdout.splitlines()[2].strip()
    assert int(out) == int(top[0]), (out, table)
    return int(out)


def _apt_install(c: Container, build: Build) -> str:
    return c.sh(
        "cd /root/pkgs && apt-get install -y --no-install-recommends "
        "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "
        f"./{build.deb.name}"
    ).stdout


def _health(c: Container, build: Build, timeout: float = 30) -> dict[str, object]:
    """GET /api/v1/health over HTTPS from inside the container, verifying the generated certificate
    (its SAN has 127.0.0.1): curl in the container's own network namespace."""
    probe = [
        "curl", "-sS", "--fail", "--max-time", "5", "--cacert", "/etc/openwatch/tls/cert.pem",
        "https://127.0.0.1:8443/api/v1/health",
    ]  # fmt: skip
    body = json.loads(c.wait_for("the health endpoint", probe, timeout=timeout).stdout)
    want = {"current": build.head, "expected": build.head}
    assert body["status"] == "healthy" and body["db_connected"] is True and body["schema"] == want, body
    assert body["version"] == build.version, body
    return body


def _install_and_start(c: Container, build: Build, m: object) -> None:
    pkg = checks.load_model()
    out = _apt_install(c, build)
    assert "Nothing was started" in out, out
    assert c.run("systemctl", "is-active", UNIT, check=False).stdout.strip() == "inactive"
    assert c.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip() == "disabled"
    checks.check_installed(c, pkg, "deb", build.version, None)
    ops.fill_secrets(c, pkg, DSN)
    ops.check_config(c, pkg, DSN)
    ops.migrate(c, pkg, DSN, build.head)
    assert _container_version(c) == build.head
    c.run("systemctl", "enable", "--now", UNIT)
    assert c.run("systemctl", "is-active", UNIT).stdout.strip() == "active"


def _stop(c: Container, within: float = 15) -> None:
    """`systemctl stop`, which must end the service well inside systemd's 90 s stop timeout; when it does
    not, the processes and the journal go into the failure."""
    c.run("systemctl", "stop", "--no-block", UNIT)
    deadline = time.monotonic() + within
    while (shown := c.show(UNIT, "ActiveState", "Result", "MainPID"))["ActiveState"] != "inactive":
        if time.monotonic() > deadline:
            procs = c.run("ps", "-eo", "pid,ppid,stat,wchan:24,etime,cmd", check=False).stdout
            pid = shown["MainPID"]
            sig = c.run("grep", "-E", "^(Sig|Shd)", f"/proc/{pid}/status", check=False).stdout
            journal = c.journal(UNIT)[-3000:]
            print(f"--- not stopped: {shown}\n{procs}\n{sig}\n{journal}")
            raise AssertionError(f"not stopped within {within} s: {shown}\n{procs}\n{sig}\n{journal}")
        time.sleep(0.1)
    assert shown["Result"] == "success", (shown, c.journal(UNIT)[-3000:])


def _status(c: Container, pid: str) -> dict[str, str]:
    text = c.file(f"/proc/{pid}/status").read_text()
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}


def _sandbox_write_probe(c: Container) -> dict[str, str]:
    """Run a shell under every [Service] setting of the installed unit (a transient unit made from the
    unit file's own lines) and try to write everywhere; returns directory -> 'ok' or the error."""
    unit = c.file("/usr/lib/systemd/system/openwatch.service").read_text()
    props = []
    for line in unit.split("[Service]", 1)[1].split("[Install]", 1)[0].splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0]
        if key in ("Type", "ExecStart", "Restart", "RestartSec"):
            continue
        props += ["-p", line]
    script = (
        "for d in /etc /etc/openwatch /usr /usr/bin /var/lib /var/cache /var/tmp /opt /srv /root /home "
        '/var/lib/openwatch /var/log/openwatch /run/openwatch /tmp "$TMPDIR"; do '
        '  if err=$( (: > "$d/.probe") 2>&1 ); then echo "$d ok"; rm -f "$d/.probe"; '
        '  else echo "$d ${err##*: }"; fi; '
        "done"
    )
    out = c.run(
        "systemd-run", "--wait", "--pipe", "--collect", "--quiet", *props, "/bin/sh", "-c", script
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_service_under_systemd(systemd_base: Path, current: Build) -> None:
    m = checks.load_model()
    with _container(systemd_base, current) as c:
        _database(c)
        _install_and_start(c, current, m)
        _health(c, current)

        # the hardening is in force for the running process
        shown = c.show(UNIT, *HARDENING, "MainPID", "ActiveState", "SubState", "RuntimeDirectory")
        for key, want in HARDENING.items():
            assert shown[key] == want, f"{key}={shown[key]!r}, the unit says {want!r}"
        pid = shown["MainPID"]
        st = _status(c, pid)
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0, st
        uid = checks.passwd(c, m.account.user)
        assert uid is not None and st["Uid"].split()[0] == str(uid.uid), st["Uid"]
        assert c.file(m.service["runtime_dir"]).is_dir()

        # the same settings, tried for writes: only its own directories (and its private /tmp) are writable
        probe = _sandbox_write_probe(c)
        print(f"[lifecycle] write probe under the unit's sandbox: {probe}")
        writable = {"/var/lib/openwatch", "/var/log/openwatch", "/run/openwatch", "/tmp", "/var/tmp"}
        assert "/run/openwatch" in probe, probe  # $TMPDIR is the runtime directory: the bundle unpacks there
        for d, result in probe.items():
            if d in writable:
                assert result == "ok", f"{d}: {result}"
            else:
                assert result != "ok", f"the sandbox lets the service write to {d}"
        assert "/tmp" in probe and probe["/etc"] in ("Read-only file system", "Permission denied"), probe

        # a clean stop: inactive, success, the runtime directory and the unpacked bundle gone
        _stop(c)
        shown = c.show(UNIT, "ActiveState", "Result", "ExecMainStatus")
        assert shown["ActiveState"] == "inactive" and shown["Result"] == "success", shown
        assert not c.file(m.service["runtime_dir"]).exists(), "/run/openwatch survived the stop"
        leftovers = c.run("find", "/tmp", "/var/tmp", "/run", "-name", "_MEI*").stdout
        assert leftovers == "", f"unpacked bundles left behind: {leftovers}"
        assert not list(c.file("/tmp").glob("systemd-private-*openwatch*")), "the private /tmp survived"


def test_upgrade_sequence_with_the_service_running(systemd_base: Path, current: Build, newer: Build) -> None:
    m = checks.load_model()
    with _container(systemd_base, current, newer) as c:
        _database(c)
        _install_and_start(c, current, m)
        _health(c, current)
        cert = checks.sha256(c.file(m.by_id["tls_cert"].path))
        # the guide's sequence: stop, upgrade, migrate, start
        _stop(c)
        out = _apt_install(c, newer)
        assert "The service was NOT restarted" in out
        assert c.run("systemctl", "is-active", UNIT, check=False).stdout.strip() == "inactive"
        assert _container_version(c) == current.head, "the upgrade migrated the database"
        ops.migrate(c, m, DSN, newer.head)
        c.run("systemctl", "start", UNIT)
        _health(c, newer)
        assert c.run("systemctl", "is-active", UNIT).stdout.strip() == "active"
        assert c.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
        assert _container_version(c) == newer.head
        assert checks.sha256(c.file(m.by_id["tls_cert"].path)) == cert
        version = c.run("openwatch", "--version").stdout.splitlines()[0]
        assert version == f"openwatch {newer.version}"

        # remove with the service running: stopped and disabled, nothing of the unit left behind
        c.run("apt-get", "remove", "-y", "openwatch")
        shown = c.show(UNIT, "ActiveState", "Result", "LoadState")
        if shown["Result"] != "success":
            print(f"--- remove did not stop the service cleanly: {shown}\n{c.journal(UNIT)}")
        assert shown["ActiveState"] == "inactive" and shown["Result"] == "success", shown
        wants = c.file("/etc/systemd/system/multi-user.target.wants/openwatch.service")
        assert not wants.is_symlink(), "remove left the enable symlink dangling"
        assert c.run("pgrep", "-f", "/usr/bin/openwatch", check=False).returncode == 1


def test_upgrade_without_migrate_is_refused_by_the_schema_guard(
    systemd_base: Path, current: Build, newer: Build
) -> None:
    m = checks.load_model()
    with _container(systemd_base, current, newer) as c:
        _database(c)
        _install_and_start(c, current, m)
        _health(c, current)
        _stop(c)
        _apt_install(c, newer)
        # the operator forgets `openwatch migrate`
        c.run("systemctl", "start", UNIT, check=False)
        want = f"schema version {current.head} is behind this binary ({newer.head}): run 'openwatch migrate'"
        exited = "Main process exited, code=exited, status=1/FAILURE"
        # Type=simple and Restart=on-failure: the unit cycles between a start that the guard ends with
        # status 1 and "auto-restart". Wait for the message, systemd's exit line and a refused state:
        # journald may write the exit line after `systemctl show` already reports the state.
        deadline = time.monotonic() + 40
        while True:
            journal = c.journal(UNIT)
            shown = c.show(UNIT, "ActiveState", "SubState", "Result", "NRestarts")
            refused = shown["SubState"] == "auto-restart" or shown["ActiveState"] == "failed"
            if want in journal and exited in journal and refused:
                break
            assert time.monotonic() < deadline, f"no refusal by the schema guard: {shown}\n{journal[-3000:]}"
            time.sleep(0.3)
        assert shown["Result"] == "exit-code", shown
        assert exited in journal, journal[-3000:]
        health = c.run("curl", "-sk", "--max-time", "2", "https://127.0.0.1:8443/api/v1/health", check=False)
        assert health.returncode != 0, "something still answers on 8443 with a schema behind the binary"
        assert _container_version(c) == current.head
        # and the documented way out: migrate, restart
        ops.migrate(c, m, DSN, newer.head)
        c.run("systemctl", "restart", UNIT)
        _health(c, newer)
        assert c.run("systemctl", "is-active", UNIT).stdout.strip() == "active"
