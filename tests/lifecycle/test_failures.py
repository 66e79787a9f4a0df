"""Installs over what an operator already has, and the error an operator sees when permissions are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks, ops
from .packages import Build
from .roots import fresh_root, run

pytestmark = [pytest.mark.chroot, pytest.mark.slow, pytest.mark.usefixtures("timed")]
FORMATS = ["deb", "rpm"]


def _package(build: Build, fmt: str) -> Path:
    return build.deb if fmt == "deb" else build.rpm


@pytest.mark.parametrize("fmt", FORMATS)
def test_install_over_existing_user_with_other_home_and_shell(
    rpm_base: Path, current: Build, fmt: str
) -> None:
    """An `openwatch` account made by the admin (a regular uid, a real home and shell) is used as it is:
    the package adapts its files to it and does not rewrite the account."""
    m = checks.load_model()
    user = m.account.user
    with fresh_root(rpm_base, f"user-{fmt}") as r:
        r.chroot("groupadd", "--gid", "1500", m.account.group)
        r.chroot(
            "useradd", "--uid", "1500", "--gid", m.account.group, "--create-home", "--home-dir", "/home/ow",
            "--shell", "/bin/bash", user,
        )  # fmt: skip
        before = checks.passwd(r, user)
        shadow_before = r.chroot("getent", "shadow", user).stdout
        ops.install_file(r, fmt, ops.put_package(r.path, _package(current, fmt)))
        assert checks.passwd(r, user) == before, "the package changed the existing account"
        assert r.chroot("getent", "shadow", user).stdout == shadow_before
        assert r.chroot("su", "-s", "/bin/bash", "-c", "echo ok", user).stdout.strip() == "ok", (
            "account broken"
        )
        assert r.file("/home/ow").is_dir()
        # every path belongs to the existing account, the service can read its secrets, the binary runs
        checks.check_paths(r, m, fmt)
        checks.check_secrets_access(r, m)
        checks.check_tls(r, m)
        checks.check_binary_runs(r, m, current.version)


@pytest.mark.parametrize("fmt", FORMATS)
def test_install_keeps_an_existing_certificate(rpm_base: Path, current: Build, fmt: str) -> None:
    """A certificate the operator put in place before installing is kept, byte for byte."""
    m = checks.load_model()
    cert, key = m.by_id["tls_cert"].path, m.by_id["tls_key"].path
    with fresh_root(rpm_base, f"cert-{fmt}") as r:
        r.file(cert).parent.mkdir(parents=True)
        run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-days", "30", "-subj", "/CN=operator.example", "-keyout", r.file(key), "-out", r.file(cert),
            ]
        )  # fmt: skip
        mine = {p: checks.sha256(r.file(p)) for p in (cert, key)}
        out = ops.install_file(r, fmt, ops.put_package(r.path, _package(current, fmt)))
        assert "generated a self-signed TLS certificate" not in out
        assert {p: checks.sha256(r.file(p)) for p in (cert, key)} == mine, (
            "the operator's TLS pair was replaced"
        )
        assert "operator.example" in r.chroot("openssl", "x509", "-in", cert, "-noout", "-subject").stdout
        checks.check_account(r, m)
        # the operator's files are readable by the service once installed (owners and modes from the model)
        checks.check_paths(r, m, fmt)
        checks.check_secrets_access(r, m)


def test_migrate_as_a_user_who_cannot_read_secrets(
    chroot_base: Path, current: Build, fresh_db: object
) -> None:
    m = checks.load_model()
    secrets = m.by_id["secrets"].path
    with fresh_root(chroot_base, "noread") as r:
        ops.install_file(r, "deb", ops.put_package(r.path, current.deb))
        ops.fill_secrets(r, m, fresh_db.dsn)  # type: ignore[attr-defined]
        proc = r.chroot("sudo", "-u", "nobody", "openwatch", "migrate", check=False)
        assert proc.returncode == 1, proc
        assert proc.stdout == "", proc.stdout
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, f"expected one line, got:\n{proc.stderr}"
        assert lines[0].startswith("openwatch migrate: ") and secrets in lines[0], lines[0]
        assert "permission denied" in lines[0].lower(), lines[0]
        assert ops.schema_version(fresh_db.dsn) is None  # type: ignore[attr-defined]
