"""DEB lifecycle in clean bookworm roots: `apt install ./file.deb`, a local apt repository (apt-ftparchive)
with an upgrade, reinstall, remove, purge and reinstall, each followed by the operator's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import checks, ops
from .packages import NEW_MAX_CONNECTIONS, Build
from .repos import AptRepo
from .roots import Root, fresh_root

pytestmark = [pytest.mark.chroot, pytest.mark.slow, pytest.mark.usefixtures("timed")]
# What an automated operator passes to apt: no prompt ever, keep an edited conffile and put the new default
# beside it (without these, a changed conffile stops dpkg at "end of file on stdin at conffile prompt").
APT_KEEP_CONFFILES = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


def _db_dsn(fresh_db: object) -> str:
    return fresh_db.dsn  # type: ignore[attr-defined]


def test_apt_install_local_file_then_guide(chroot_base: Path, current: Build, fresh_db: object) -> None:
    m = checks.load_model()
    dsn = _db_dsn(fresh_db)
    with fresh_root(chroot_base, "deb-file") as r:
        inner = ops.put_package(r.path, current.deb)
        out = ops.install_file(r, "deb", inner)
        assert "Nothing was started and the database was not touched" in out, out
        cert = checks.check_installed(r, m, "deb", current.version, r.path)
        assert r.chroot("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "openwatch").stdout.strip() == "ii"

        # The DSN goes in; a reinstall (postinst configure with the old version set) must still migrate
        # nothing and start nothing: the package never touches the database.
        ops.fill_secrets(r, m, dsn)
        r.chroot("apt-get", "install", "-y", "--reinstall", *APT_KEEP_CONFFILES, inner)
        assert ops.schema_version(dsn) is None, "installing the package touched the database"
        checks.check_nothing_started(r, m, r.path)
        checks.check_paths(r, m, "deb")
        assert checks.check_tls(r, m) == cert

        # check-config as the service user: valid, and the password never printed.
        ops.check_config(r, m, dsn)

        ops.migrate(r, m, dsn, current.head)
        assert ops.schema_version(dsn) == current.head
        # goose skips what is applied: a second run changes nothing.
        ops.migrate(r, m, dsn, current.head)
        assert ops.schema_version(dsn) == current.head


def _published(r: Root, repo: AptRepo, *builds: Path) -> None:
    repo.publish(*builds)


def test_apt_repo_upgrade_reinstall_remove_purge(
    chroot_base: Path, current: Build, newer: Build, fresh_db: object
) -> None:
    m = checks.load_model()
    dsn = _db_dsn(fresh_db)
    conf, secrets = m.by_id["config"].path, m.by_id["secrets"].path
    kept_dirs = [m.by_id["confdir"].path, m.by_id["state"].path, m.by_id["logs"].path]
    with fresh_root(chroot_base, "deb-repo") as r:
        repo = AptRepo(r)
        repo.publish(current.deb)
        r.chroot("apt-get", "install", "-y", "--no-install-recommends", "openwatch")
        cert = checks.check_installed(r, m, "deb", current.version, r.path)

        # Before the upgrade the operator has edited both files and migrated.
        secrets_text = ops.fill_secrets(r, m, dsn)
        conf_text = ops.edit_config(r, m)
        ops.migrate(r, m, dsn, current.head)

        repo.publish(newer.deb)
        out = r.chroot(
            "apt-get",
            "install",
            "--only-upgrade",
            "-y",
            "--no-install-recommends",
            *APT_KEEP_CONFFILES,
            "openwatch",
        ).stdout
        assert "The service was NOT restarted" in out, out
        checks.check_installed(r, m, "deb", newer.version, r.path)
        assert r.file(conf).read_text() == conf_text, "the operator's openwatch.toml edit was lost"
        assert r.file(secrets).read_text() == secrets_text, "secrets.env was changed by the upgrade"
        dist = r.file(conf + ".dpkg-dist")
        assert dist.exists(), "the changed default was not written as openwatch.toml.dpkg-dist"
        assert f"max_connections = {NEW_MAX_CONNECTIONS}" in dist.read_text()
        assert not r.file(secrets + ".dpkg-dist").exists(), "secrets.env's default did not change"
        assert checks.check_tls(r, m) == cert, "the upgrade replaced the TLS certificate"
        # The package migrated nothing: the schema is where the operator left it until they run migrate.
        assert ops.schema_version(dsn) == current.head
        ops.migrate(r, m, dsn, newer.head)
        assert ops.schema_version(dsn) == newer.head

        # Reinstalling the same version changes nothing at all.
        before = checks.tree_digest(r.path, kept_dirs)
        r.chroot("apt-get", "install", "--reinstall", "-y", *APT_KEEP_CONFFILES, "openwatch")
        assert checks.tree_digest(r.path, kept_dirs) == before
        assert ops.schema_version(dsn) == newer.head

        # remove: config, secrets, cert and state stay; nothing of the package is left dangling.
        payload = [e.path for e in m.payload("deb") if not e.is_dir and not e.is_conffile]
        state_file = ops.leave_state(r, m)
        r.chroot("apt-get", "remove", "-y", "openwatch")
        status = r.chroot("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "openwatch").stdout.strip()
        assert status == "rc", status
        for p in payload:
            assert not r.file(p).exists(), f"{p} survived remove"
        assert r.file(conf).read_text() == conf_text and r.file(secrets).read_text() == secrets_text
        assert checks.sha256(r.file(m.by_id["tls_cert"].path)) == cert
        assert r.file(state_file).read_text() == ops.STATE_TEXT, "remove deleted the service's state"
        assert ops.schema_version(dsn) == newer.head
        assert not checks.dangling_symlinks(r.path), checks.dangling_symlinks(r.path)
        assert checks.passwd(r, m.account.user) is not None

        # a later install finds the kept state
        r.chroot("apt-get", "install", "-y", *APT_KEEP_CONFFILES, "openwatch")
        assert checks.check_installed(r, m, "deb", newer.version, r.path) == cert
        assert r.file(conf).read_text() == conf_text and r.file(secrets).read_text() == secrets_text
        ops.migrate(r, m, dsn, newer.head)

        # purge removes what package.toml says it does ([purge] ids); the account stays, as documented.
        r.chroot("apt-get", "purge", "-y", "openwatch")
        assert r.chroot("dpkg-query", "-W", "openwatch", check=False).returncode != 0
        for p in m.purge_paths():
            assert not r.file(p).exists(), f"{p} survived purge"
        assert checks.passwd(r, m.account.user) is not None
        assert not checks.dangling_symlinks(r.path)

        # and after a purge the package installs as new: a fresh certificate, the shipped defaults.
        r.chroot("apt-get", "install", "-y", "openwatch")
        assert checks.check_installed(r, m, "deb", newer.version, r.path) != cert
        assert ops.OPERATOR_MARK not in r.file(conf).read_text()
