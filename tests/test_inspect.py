"""inspect: real .rpm (rpmbuild) and .deb (dpkg-deb) read as data, and the postinst ownership block."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from owrelease.inspect import InspectError, extract_file, parse_ownership_block, read_package

SPEC = """\
Name: demo
Version: 0.2.0~rc1
Release: 1
Epoch: 1
Summary: Demo
License: MIT
BuildArch: x86_64
Requires: libc6
Recommends: postgresql
%description
Demo.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/demo %{buildroot}/var/lib/demo
printf 'x' > %{buildroot}/usr/bin/demo; chmod 755 %{buildroot}/usr/bin/demo
echo a=1 > %{buildroot}/etc/demo/demo.toml
echo S=1 > %{buildroot}/etc/demo/secrets.env
ln -s demo %{buildroot}/usr/bin/demo2
%pre
echo pre
%files
%attr(0755,root,root) /usr/bin/demo
/usr/bin/demo2
%dir %attr(0750,root,demo) /etc/demo
%config(noreplace) %attr(0644,root,root) /etc/demo/demo.toml
%config(noreplace) %attr(0640,root,demo) %verify(not md5 size mtime) /etc/demo/secrets.env
%dir %attr(0750,demo,demo) /var/lib/demo
%ghost /var/lib/demo/x.pid
"""


def test_rpm_read_as_data(tmp_path: Path) -> None:
    (tmp_path / "demo.spec").write_text(SPEC)
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--define",
            f"_topdir {tmp_path}",
            "--define",
            "_build_id_links none",
            "demo.spec",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    path = next((tmp_path / "RPMS").rglob("*.rpm"))
    view = read_package(path)
    assert (view.name, view.epoch, view.version, view.release, view.arch) == (
        "demo",
        1,
        "0.2.0~rc1",
        "1",
        "x86_64",
    )
    assert view.problems == []
    e = view.entries
    assert e["/usr/bin/demo"].describe() == "file 0755 root:root" and e["/usr/bin/demo"].size == 1
    assert e["/usr/bin/demo"].sha256 == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    assert (e["/usr/bin/demo2"].kind, e["/usr/bin/demo2"].target) == ("symlink", "demo")
    assert e["/etc/demo"].describe() == "dir 0750 root:demo"
    assert e["/etc/demo/demo.toml"].config and e["/etc/demo/demo.toml"].noreplace
    assert e["/etc/demo/demo.toml"].verify_not == ()
    assert e["/etc/demo/secrets.env"].verify_not == ("md5", "mtime", "size")
    assert e["/var/lib/demo/x.pid"].ghost and e["/var/lib/demo/x.pid"].sha256 is None
    assert view.scripts == {"preinst": "echo pre"}
    assert "libc6" in view.relations["Requires"] and view.relations["Recommends"] == ["postgresql"]
    assert extract_file(path, "/usr/bin/demo") == b"x"


def _deb(tmp_path: Path, postinst: str) -> Path:
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "etc/demo").mkdir(parents=True)
    (root / "etc/demo/secrets.env").write_text("S=1\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/demo").write_text("x")
    (root / "usr/bin/demo").chmod(0o755)
    root.chmod(0o755)
    (root / "DEBIAN/control").write_text(
        "Package: demo\nVersion: 1:0.2.0~rc1-1\nArchitecture: amd64\nMaintainer: A <a@b.c>\n"
        "Depends: libc6 (>= 2.28), openssl\nDescription: demo\n demo\n"
    )
    (root / "DEBIAN/conffiles").write_text("/etc/demo/secrets.env\n")
    (root / "DEBIAN/postinst").write_text(postinst)
    (root / "DEBIAN/postinst").chmod(0o755)
    out = tmp_path / "demo.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)], check=True, capture_output=True
    )
    return out


def test_deb_ownership_comes_from_the_postinst_block(tmp_path: Path) -> None:
    postinst = (
        "#!/bin/sh\nset -e\n# owrelease:ownership begin\n"
        "[ ! -e /etc/demo/secrets.env ] || "
        "{ chown root:demo /etc/demo/secrets.env; chmod 0640 /etc/demo/secrets.env; }\n"
        "install -d -m 0750 -o demo -g demo /var/lib/demo\n"
        "# owrelease:ownership end\n"
    )
    view = read_package(_deb(tmp_path, postinst))
    assert (view.name, view.epoch, view.version, view.release) == ("demo", 1, "0.2.0~rc1", "1")
    assert view.problems == []
    secret = view.entries["/etc/demo/secrets.env"]
    assert (secret.describe(), secret.config) == ("file 0640 root:demo", True)
    assert view.entries["/var/lib/demo"].describe() == "dir 0750 demo:demo"
    assert view.entries["/usr/bin/demo"].describe() == "file 0755 root:root"
    assert view.relations["Depends"] == ["libc6 (>= 2.28)", "openssl"]


def test_deb_ownership_block_rejects_other_commands(tmp_path: Path) -> None:
    postinst = "#!/bin/sh\n# owrelease:ownership begin\nchown -R demo /etc/demo\n# owrelease:ownership end\n"
    view = read_package(_deb(tmp_path, postinst))
    assert view.problems == [
        "demo.deb: postinst:3: cannot read ownership line 'chown -R demo /etc/demo': "
        "expected chown [-h] OWNER:GROUP PATH"
    ]


def test_ownership_block_parsing() -> None:
    fixes, problems = parse_ownership_block("# owrelease:ownership begin\nchmod 0640 /a\n")
    assert problems == ["postinst: ownership block markers are unbalanced (1 begin, 0 end)"] and fixes == []
    fixes, problems = parse_ownership_block(
        "# owrelease:ownership begin\n[ ! -e /a ] || { chown root:g /b; }\n# owrelease:ownership end\n"
    )
    assert fixes == [] and "the guarded path and the commands' path differ" in problems[0]
    fixes, problems = parse_ownership_block(
        "# owrelease:ownership begin\nchmod 0999 /a\n# owrelease:ownership end\n"
    )
    assert "is not octal" in problems[0]
    # only the marked block is read: ownership lines outside it change nothing
    fixes, problems = parse_ownership_block(
        "chmod 0700 /outside\n# owrelease:ownership begin\nchmod 0640 /a\n# owrelease:ownership end\n"
        "chown root:g /after\n"
    )
    assert [(f.op, f.path, f.mode) for f in fixes] == [("chmod", "/a", 0o640)] and problems == []
    assert parse_ownership_block("# owners and modes from packaging/package.toml\nchmod 0640 /a\n") == (
        [],
        [],
    )


def test_not_a_package(tmp_path: Path) -> None:
    bogus = tmp_path / "x.rpm"
    bogus.write_bytes(b"nope")
    with pytest.raises(InspectError, match=r"x\.rpm: not a readable rpm"):
        read_package(bogus)
