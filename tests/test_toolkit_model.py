"""owrelease.model: the one declaration and what it generates for each format (pure)."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest
from owrelease import model

REPO_TOML = model.PACKAGE_TOML


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return tomllib.loads(REPO_TOML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pkg() -> model.Package:
    return model.load()


def _with(raw: dict[str, Any], pid: str, **change: object) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for entry in data["path"]:
        if entry["id"] == pid:
            entry.update(change)
    return data


def test_declaration_loads_and_matches_app_version(pkg: model.Package) -> None:
    assert pkg.name == "openwatch"
    assert pkg.license == "MIT"
    assert pkg.account.user == "openwatch" and pkg.account.home == "/var/lib/openwatch"
    assert pkg.account.shell.endswith("nologin")
    model.check_changelog(pkg, model.app_version())


def test_rpm_files_lines(pkg: model.Package) -> None:
    lines = pkg.rpm_files()
    assert "%dir %attr(0750,root,openwatch) /etc/openwatch" in lines
    assert "%config(noreplace) %attr(0640,root,openwatch) /etc/openwatch/openwatch.toml" in lines
    assert (
        "%config(noreplace) %verify(not md5 size mtime) %attr(0640,root,openwatch) /etc/openwatch/secrets.env"
        in lines
    )
    assert "%attr(0755,root,root) /usr/bin/openwatch" in lines
    assert "%dir %attr(0750,openwatch,openwatch) /var/lib/openwatch" in lines
    assert "%dir %attr(0750,openwatch,openwatch) /var/log/openwatch" in lines
    # generated files (the TLS pair) are never in a payload: not even %ghost, so erase keeps them
    assert not [ln for ln in lines if "/tls/" in ln and ln.endswith(".pem")]
    # the Debian changelog is DEB-only (RPM carries %changelog)
    assert not [ln for ln in lines if "changelog.Debian" in ln]


def test_conffiles_and_ownership_fixes(pkg: model.Package) -> None:
    assert pkg.conffiles("deb") == ["/etc/openwatch/openwatch.toml", "/etc/openwatch/secrets.env"]
    fixes = {e.path: (e.owner, e.group, e.mode_str) for e in pkg.ownership_fixes("deb")}
    assert fixes == {
        "/etc/openwatch": ("root", "openwatch", "0750"),
        "/etc/openwatch/openwatch.toml": ("root", "openwatch", "0640"),
        "/etc/openwatch/secrets.env": ("root", "openwatch", "0640"),
        "/etc/openwatch/tls": ("root", "openwatch", "0750"),
        "/var/lib/openwatch": ("openwatch", "openwatch", "0750"),
        "/var/lib/openwatch/backups": ("openwatch", "openwatch", "0700"),
        "/var/log/openwatch": ("openwatch", "openwatch", "0750"),
    }


def test_dependencies_use_the_measured_floor_and_no_postgres_server(pkg: model.Package) -> None:
    rpm = pkg.rpm_requires("2.28")
    assert "glibc >= 2.28" in rpm["requires"] and "openssl" in rpm["requires_post"]
    assert rpm["requires_pre"] == ["shadow-utils"]
    deb = pkg.deb_depends("2.31")
    assert deb[0] == "libc6 (>= 2.31)" and "passwd" in deb and "openssl" in deb
    assert not [d for d in [*deb, *rpm["requires"]] if "postgres" in d]
    # pg_dump/pg_restore for migrate's backup: weak dependencies only (the database may be remote)
    assert pkg.recommends("deb") == ["postgresql-client"] and pkg.recommends("rpm") == ["postgresql"]


def test_lintian_overrides_ship_byte_for_byte_in_the_deb_only(pkg: model.Package) -> None:
    entry = pkg.by_id["lintian_overrides"]
    assert entry.path == "/usr/share/lintian/overrides/openwatch"
    assert (entry.file, entry.mode_str, entry.formats) == ("packaging/lintian-overrides", "0644", ("deb",))
    assert (model.ROOT / entry.file).is_file()
    assert entry in pkg.payload("deb") and entry not in pkg.payload("rpm")


def test_purge_paths(pkg: model.Package) -> None:
    assert pkg.purge_paths() == ["/etc/openwatch", "/var/lib/openwatch", "/var/log/openwatch"]


@pytest.mark.parametrize(
    ("pid", "change", "message"),
    [
        ("secrets", {"mode": "0644"}, "a secret must not be readable by others"),
        ("config", {"mode": "0666"}, "world-writable"),
        ("config", {"mode": "640"}, "4-digit octal"),
        ("config", {"kind": "conf"}, "unknown kind"),
        ("config", {"owner": "nobody"}, "neither root nor the service account"),
        ("config", {"path": "/etc/openwatch/../x"}, "absolute and normalised"),
        ("config", {"path": "/etc/openwatch/secrets.env"}, "declared twice"),
        ("state", {"source": "template:x.j2"}, "a dir has no source"),
        ("config", {"source": "http:x"}, "must start with"),
        ("config", {"source": "file:../x"}, "relative to the project root"),
        ("config", {"source": "file:/etc/x"}, "relative to the project root"),
        ("config", {"source": "file:a//b"}, "relative to the project root"),
        ("config", {"formats": ["apk"]}, "formats must be"),
    ],
)
def test_inconsistent_declaration_is_named(raw: dict[str, Any], pid: str, change: dict, message: str) -> None:
    with pytest.raises(model.ModelError, match=message):
        model.parse(_with(raw, pid, **change))


def test_changelog_must_cover_the_current_version(pkg: model.Package) -> None:
    with pytest.raises(model.ModelError, match="add an entry"):
        model.check_changelog(pkg, "9.9.9")


def test_changelog_lines_fit_debian_policy(pkg: model.Package) -> None:
    for entry in pkg.changelog:
        for change in entry.changes:
            assert len("  * " + change) <= 80, change
