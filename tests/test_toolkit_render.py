"""owrelease.render: every template renders under StrictUndefined from model values alone (pure)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jinja2
import pytest
from owrelease import model, render

FACTS = render.BuildFacts(pep440="0.2.0rc1", glibc_floor="2.28", arch_rpm="x86_64", arch_deb="amd64")


@pytest.fixture(scope="module")
def pkg() -> model.Package:
    return model.load()


@pytest.fixture(scope="module")
def ctx(pkg: model.Package) -> dict:
    return render.context(pkg, FACTS)


@pytest.fixture(scope="module")
def files(pkg: model.Package, ctx: dict) -> dict[str, str]:
    return render.payload_files(pkg, ctx, "deb") | render.payload_files(pkg, ctx, "rpm")


def test_templates_are_dumb() -> None:
    """No logic beyond loops and includes: no if/set/macro/call, no arithmetic on versions or paths."""
    for path in render.TEMPLATES.rglob("*.j2"):
        text = path.read_text(encoding="utf-8")
        tags = re.findall(r"{%-?\s*(\w+)", text)
        assert set(tags) <= {"for", "endfor", "include"}, f"{path}: {sorted(set(tags))}"
        assert "~" not in "".join(re.findall(r"{{(.*?)}}", text)), f"{path}: string building in a template"


def test_strict_undefined_fails_loudly(ctx: dict) -> None:
    env = render.environment()
    broken = {k: v for k, v in ctx.items() if k != "service"}
    with pytest.raises(jinja2.UndefinedError, match="service"):
        render.render(env, "systemd/openwatch.service.j2", broken)


def test_unit(files: dict[str, str]) -> None:
    unit = files["unit"]
    for line in (
        "ExecStart=/usr/bin/openwatch serve",
        "User=openwatch",
        "Group=openwatch",
        "EnvironmentFile=-/etc/openwatch/secrets.env",
        "StateDirectory=openwatch",
        "WorkingDirectory=/var/lib/openwatch",
        "RuntimeDirectory=openwatch",
        "Environment=TMPDIR=/run/openwatch",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "UMask=0077",
        "MemoryDenyWriteExecute=yes",
        "WantedBy=multi-user.target",
    ):
        assert line in unit.splitlines(), line
    assert re.search(r"^Documentation=\S", unit, re.M)
    assert "migrate" not in "".join(ln for ln in unit.splitlines() if ln.startswith("Exec"))


def test_config_is_valid_toml_with_the_defaults(files: dict[str, str], pkg: model.Package) -> None:
    cfg = tomllib.loads(files["config"])
    assert cfg["server"] == {
        "listen": "0.0.0.0:8443",
        "tls_cert": "/etc/openwatch/tls/cert.pem",
        "tls_key": "/etc/openwatch/tls/key.pem",
    }
    assert cfg["database"] == {"max_connections": 10}
    assert cfg["logging"] == {"level": "info", "format": "text"}
    assert re.search(r"^# dsn = ", files["config"], re.M)
    assert "secrets.env" in files["config"]


def test_secrets_template_sets_nothing(files: dict[str, str]) -> None:
    lines = files["secrets"].splitlines()
    assert "#OPENWATCH_DATABASE_DSN=" in lines
    assert all(not ln.strip() or ln.startswith("#") for ln in lines)
    assert "quote" in files["secrets"].lower()


def test_spec_files_and_scripts(pkg: model.Package, ctx: dict) -> None:
    spec = render.rpm_spec(ctx)
    files_section = spec.split("\n%files\n", 1)[1].split("\n%changelog", 1)[0]
    assert [ln for ln in files_section.splitlines() if ln] == pkg.rpm_files()
    assert "Version:        0.2.0~rc1\n" in spec and "Release:        1\n" in spec
    assert "Requires(pre):  shadow-utils" in spec and "Requires:       glibc >= 2.28" in spec
    for section in ("%pre", "%post", "%preun", "%postun"):
        assert f"\n{section}\nset -e\n" in spec
    assert "%global __os_install_post %{nil}" in spec
    assert "Epoch" not in spec
    assert re.search(r"^\* Thu Nov 26 2026 .+ - 0\.2\.0~rc1-1$", spec, re.M)


def test_deb_control_files(pkg: model.Package, ctx: dict) -> None:
    out = render.deb_control_files(ctx, 1234, [("d41d8cd98f00b204e9800998ecf8427e", "usr/bin/openwatch")])
    control = out["control"]
    assert "Version: 0.2.0~rc1-1\n" in control and "Installed-Size: 1234\n" in control
    assert "Depends: libc6 (>= 2.28), openssl, passwd, zlib1g\n" in control
    assert all(ln.startswith(" ") for ln in control.split("Description:", 1)[1].splitlines()[1:])
    assert out["conffiles"].splitlines() == pkg.conffiles("deb")
    assert out["md5sums"] == "d41d8cd98f00b204e9800998ecf8427e  usr/bin/openwatch\n"
    for name in render.DEB_SCRIPTS:
        assert out[name].startswith("#!/bin/sh\n") and "\nset -e\n" in out[name]
    block = out["postinst"].split("# owrelease:ownership begin\n", 1)[1].split("# owrelease:ownership end\n")
    assert len(block) == 2, "exactly one ownership block"
    for e in pkg.ownership_fixes("deb"):
        assert f"chown {e.owner}:{e.group} {e.path};" in block[0]
        assert f"chmod {e.mode_str} {e.path};" in block[0]
    assert "chown" not in block[1].split("# a self-signed TLS pair")[0]


def test_changelog_and_copyright(files: dict[str, str]) -> None:
    assert files["changelog"].startswith("openwatch (0.2.0~rc1-1) unstable; urgency=medium\n\n  * ")
    assert re.search(r"^ -- .+ <.+>  Thu, 26 Nov 2026 00:00:00 \+0000$", files["changelog"], re.M)
    assert files["copyright"].startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    )
    assert "\nLicense: MIT\n" in files["copyright"]


def test_render_tree_is_readable(tmp_path: Path, pkg: model.Package) -> None:
    written = render.render_tree(pkg, FACTS, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert "payload/usr/lib/systemd/system/openwatch.service" in names
    assert "payload/usr/share/man/man1/openwatch.1" in names  # uncompressed for reading
    assert "rpm/openwatch.spec" in names and "deb/DEBIAN/postinst" in names


def test_descriptions_fit_the_linters(ctx: dict) -> None:
    spec = render.rpm_spec(ctx)
    description = spec.split("\n%description\n", 1)[1].split("\n%prep", 1)[0]
    assert description.strip() and all(len(ln) <= 79 for ln in description.splitlines())
    assert all(len(ln) <= 80 for ln in ctx["deb"]["description"])
