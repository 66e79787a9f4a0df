"""RPM lifecycle in clean roots: `rpm -i` run by the root's own rpm, and `dnf --installroot` from a local
createrepo_c repository, each with an upgrade, a reinstall and an erase, followed by the operator's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks, ops
from .packages import NEW_MAX_CONNECTIONS, Build
from .repos import RpmRepo, build_fakesys
from .roots import Root, fresh_root, run

pytestmark = [pytest.mark.chroot, pytest.mark.slow, pytest.mark.usefixtures("timed")]


def _rpm_upgrade_checks(r: Root, newer: Build, conf_text: str, secrets_text: str, cert: str) -> None:
    pkg = checks.load_model()
    conf, secrets = pkg.by_id["config"].path, pkg.by_id["secrets"].path
    checks.check_installed(r, pkg, "rpm", newer.version, r.path)
    assert r.file(conf).read_text() == conf_text, "the operator's openwatch.toml edit was lost"
    assert r.file(secrets).read_text() == secrets_text, "secrets.env was changed by the upgrade"
    rpmnew = r.file(conf + ".rpmnew")
    assert rpmnew.exists(), "the changed default was not written as openwatch.toml.rpmnew"
    assert f"max_connections = {NEW_MAX_CONNECTIONS}" in rpmnew.read_text()
    assert not r.file(secrets + ".rpmnew").exists(), "secrets.env's default did not change"
    assert checks.check_tls(r, pkg) == cert, "the upgrade replaced the TLS certificate"


def _erase_checks(r: Root, conf_text: str, secrets_text: str, cert: str, state_file: str) -> None:
    """After an erase: the payload is gone, the edited config and secrets are saved as .rpmsave (rpm's
    way of keeping a modified %config file), the generated TLS pair and the account stay."""
    m = checks.load_model()
    for e in m.payload("rpm"):
        if not e.is_dir and not e.is_conffile:
            assert not r.file(e.path).exists(), f"{e.path} survived the erase"
    conf, secrets = m.by_id["config"].path, m.by_id["secrets"].path
    assert r.file(conf + ".rpmsave").read_text() == conf_text
    assert r.file(secrets + ".rpmsave").read_text() == secrets_text
    assert checks.sha256(r.file(m.by_id["tls_cert"].path)) == cert
    assert r.file(m.by_id["tls_key"].path).exists()
    assert r.file(state_file).read_text() == ops.STATE_TEXT, "the erase deleted the service's state"
    assert checks.passwd(r, m.account.user) is not None
    assert not checks.dangling_symlinks(r.path), checks.dangling_symlinks(r.path)


def test_rpm_install_upgrade_erase_in_root(
    rpm_base: Path, current: Build, newer: Build, fresh_db: object
) -> None:
    m = checks.load_model()
    dsn = fresh_db.dsn  # type: ignore[attr-defined]
    with fresh_root(rpm_base, "rpm") as r:
        v1 = ops.put_package(r.path, current.rpm)
        v2 = ops.put_package(r.path, newer.rpm)
        out = ops.install_file(r, "rpm", v1)
        assert "Nothing was started and the database was not touched" in out, out
        cert = checks.check_installed(r, m, "rpm", current.version, r.path)
        assert r.chroot("rpm", "-V", "--nodeps", "openwatch", check=False).stdout == "", (
            "fresh install does not verify"
        )

        secrets_text = ops.fill_secrets(r, m, dsn)
        conf_text = ops.edit_config(r, m)
        ops.check_config(r, m, dsn)
        ops.migrate(r, m, dsn, current.head)
        assert ops.schema_version(dsn) == current.head

        # the upgrade: --nodeps for the reason given in ops.install_file
        up = r.chroot("rpm", "-U", "--nodeps", v2)
        assert "openwatch.toml created as /etc/openwatch/openwatch.toml.rpmnew" in up.stderr, up
        _rpm_upgrade_checks(r, newer, conf_text, secrets_text, cert)
        assert ops.schema_version(dsn) == current.head, "the package migrated the database"
        ops.migrate(r, m, dsn, newer.head)
        assert ops.schema_version(dsn) == newer.head
        verify = r.chroot("rpm", "-V", "--nodeps", "openwatch", check=False).stdout.splitlines()
        # only the operator's edit shows (secrets.env is %verify(not md5 size mtime))
        assert [line.split()[-1] for line in verify] == [m.by_id["config"].path], verify

        kept = [m.by_id["confdir"].path, m.by_id["state"].path, m.by_id["logs"].path]
        before = checks.tree_digest(r.path, kept)
        r.chroot("rpm", "-U", "--replacepkgs", "--nodeps", v2)
        assert checks.tree_digest(r.path, kept) == before, "reinstalling the same version changed files"

        state_file = ops.leave_state(r, m)
        r.chroot("rpm", "-e", "openwatch")
        assert r.chroot("rpm", "-q", "openwatch", check=False).returncode != 0
        _erase_checks(r, conf_text, secrets_text, cert, state_file)

        # a later install finds the kept state: the certificate is not regenerated
        ops.install_file(r, "rpm", v2)
        assert checks.check_installed(r, m, "rpm", newer.version, r.path) == cert


def test_dnf_installroot_from_local_repo(
    chroot_base: Path, current: Build, newer: Build, fresh_db: object
) -> None:
    m = checks.load_model()
    dsn = fresh_db.dsn  # type: ignore[attr-defined]
    with fresh_root(chroot_base, "dnf") as r:
        repo = RpmRepo(r.workdir / "rpmrepo")
        repo.publish(current.rpm, build_fakesys(current.rpm, r, r.workdir))

        def dnf(*args: str) -> str:
            # dnf on the host, installing into the root: scriptlets run chrooted with the root's /bin/sh.
            cmd = [
                "dnf",
                "-y",
                f"--installroot={r.path}",
                "--setopt=reposdir=/dev/null",
                "--setopt=install_weak_deps=False",
                "--setopt=metadata_expire=0",  # see a republished repo at once (else "Nothing to do")
                f"--repofrompath=local,file://{repo.dir}",
                "--setopt=local.gpgcheck=0",
                *args,
            ]
            return run(cmd).stdout

        out = dnf("install", "openwatch")
        assert "fakesys" in out, "dnf did not resolve the dependencies through fakesys"
        assert "Nothing was started and the database was not touched" in out, out
        cert = checks.check_installed(r, m, "rpm", current.version, r.path)

        secrets_text = ops.fill_secrets(r, m, dsn)
        conf_text = ops.edit_config(r, m)
        ops.check_config(r, m, dsn)
        ops.migrate(r, m, dsn, current.head)

        repo.publish(newer.rpm)
        out = dnf("upgrade", "openwatch")
        assert newer.rpm.name.split("-")[1] in out or "Upgraded" in out, out
        _rpm_upgrade_checks(r, newer, conf_text, secrets_text, cert)
        assert ops.schema_version(dsn) == current.head, "the package migrated the database"
        ops.migrate(r, m, dsn, newer.head)
        assert ops.schema_version(dsn) == newer.head

        kept = [m.by_id["confdir"].path, m.by_id["state"].path, m.by_id["logs"].path]
        before = checks.tree_digest(r.path, kept)
        dnf("reinstall", "openwatch")
        assert checks.tree_digest(r.path, kept) == before, "reinstalling the same version changed files"

        state_file = ops.leave_state(r, m)
        dnf("remove", "openwatch")
        _erase_checks(r, conf_text, secrets_text, cert, state_file)
        dnf("install", "openwatch")
        assert checks.check_installed(r, m, "rpm", newer.version, r.path) == cert
