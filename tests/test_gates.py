"""Gates: real lintian, rpmlint, systemd-analyze on real inputs; justification rules for exceptions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from owrelease import gates

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "templates" / "systemd" / "openwatch.service.j2"


def test_committed_exceptions_are_all_justified() -> None:
    assert gates.rpmlint_filter_problems(REPO / "packaging" / "rpmlint.toml") == []
    assert gates.lintian_override_problems(REPO / "packaging" / "lintian-overrides") == []


def test_unjustified_exceptions_are_named(tmp_path: Path) -> None:
    overrides = tmp_path / "lintian-overrides"
    overrides.write_text("# why\nopenwatch: a-tag\nopenwatch: b-tag\n")
    assert gates.lintian_override_problems(overrides) == [
        "lintian-overrides:3: override without a justifying comment above it"
    ]
    toml = tmp_path / "rpmlint.toml"
    toml.write_text('Filters = [\n    # why\n    "a-tag",\n    "b-tag",\n]\n')
    assert gates.rpmlint_filter_problems(toml) == [
        "rpmlint.toml:4: filter without a justifying comment above it"
    ]


def _root(tmp_path: Path, unit: str) -> Path:
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/lib/systemd/system/demo.service").write_text(unit)
    exe = root / "usr/bin/demo"
    exe.parent.mkdir(parents=True)
    shutil.copyfile("/bin/true", exe)
    exe.chmod(0o755)
    return root


HARDENED = """\
[Unit]
Description=demo

[Service]
ExecStart=/usr/bin/demo
DynamicUser=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
PrivateMounts=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
NoNewPrivileges=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
UMask=0077
IPAddressDeny=any

[Install]
WantedBy=multi-user.target
"""


def test_systemd_verify_silent_on_a_clean_unit_and_loud_on_a_bad_key(tmp_path: Path) -> None:
    assert gates.systemd_verify(_root(tmp_path / "a", HARDENED), "demo.service").failures == []
    bad = HARDENED.replace("UMask=0077", "UMask=0077\nFooBar=1")
    failures = gates.systemd_verify(_root(tmp_path / "b", bad), "demo.service").failures
    assert len(failures) == 1 and "Unknown key 'FooBar'" in failures[0]


def test_systemd_security_threshold(tmp_path: Path) -> None:
    good = gates.systemd_security(_root(tmp_path / "a", HARDENED), "demo.service")
    assert good.failures == [], good.note
    basic = "[Service]\nExecStart=/usr/bin/demo\n"
    bad = gates.systemd_security(_root(tmp_path / "b", basic), "demo.service")
    assert len(bad.failures) == 1 and "exposure" in bad.failures[0] and "> 2.0" in bad.failures[0]


@pytest.mark.packages
def test_rpmlint_is_pinned_and_reports_errors(tmp_path: Path) -> None:
    spec = tmp_path / "demo.spec"
    spec.write_text(
        "Name: demo\nVersion: 1\nRelease: 1\nSummary: d\nLicense: MIT\nBuildArch: noarch\n%description\nd\n"
        "%install\nmkdir -p %{buildroot}/etc/demo\necho x > %{buildroot}/etc/demo/a.conf\n"
        "%files\n%attr(0640,root,root) /etc/demo/a.conf\n"
    )
    import subprocess

    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {tmp_path}", str(spec)], check=True, capture_output=True
    )
    rpm = next((tmp_path / "RPMS").rglob("*.rpm"))
    result = gates.rpmlint(rpm, REPO / "packaging" / "rpmlint.toml")
    text = "\n".join(result.failures)
    assert "non-conffile-in-etc /etc/demo/a.conf" in text  # a real finding, not filtered
    assert "non-readable /etc/demo/a.conf 640" in text  # the filter is for openwatch's files only
    assert "no-signature" not in text  # filtered, with its justification


@pytest.mark.packages
def test_lintian_reports_warnings_as_failures(tmp_path: Path) -> None:
    import subprocess

    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/demo.conf").write_text("x\n")
    root.chmod(0o755)
    (root / "DEBIAN/control").write_text(
        "Package: demo\nVersion: 1-1\nArchitecture: all\nMaintainer: A <a@b.c>\nDescription: demo\n demo\n"
    )
    deb = tmp_path / "demo_1-1_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True
    )
    result = gates.lintian(deb)
    text = "\n".join(result.failures)
    assert "E: demo: file-in-etc-not-marked-as-conffile [etc/demo.conf]" in text
    assert "E: demo: no-copyright-file" in text
