"""The runtime lock: its shape, the verified fetch of its tarballs, and `nox -s runtime` against real mirrors.

A file: mirror (a directory laid out like a Debian archive, with a real xz-compressed Sources index) drives
the check and the fetch through the same code paths as the host's mirror; one test reads the host's mirror.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import subprocess
import sys
from pathlib import Path

import pytest
from owrelease import runtimecheck, runtimelock, runtimesrc

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"source_package", "upstream_version", "debian_version", "suite", "orig_tarball", "sha256"}


def test_committed_lock_has_the_shape_others_read() -> None:
    doc = json.loads(runtimelock.LOCK.read_text())
    assert set(doc["components"]) == {"python", "openssl"}
    for entry in doc["components"].values():
        assert entry.keys() >= KEYS
    lock = runtimelock.load()
    decl = runtimelock.declared()
    for name, c in lock.items():
        assert c.source_package == decl[name].source_package and c.branch == decl[name].branch
        assert c.suite in decl[name].suites
        assert c.upstream_version.startswith(c.branch + ".")
        assert (
            c.orig_tarball
            == f"{c.source_package}_{c.upstream_version}.orig.tar.{c.orig_tarball.rsplit('.', 1)[1]}"
        )
    assert lock["openssl"].branch == "3.5"
    assert runtimelock.dump(lock) == runtimelock.LOCK.read_text()


def test_a_malformed_lock_is_one_line_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "runtime.lock.json"
    doc = json.loads(runtimelock.LOCK.read_text())
    del doc["components"]["openssl"]["sha256"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(runtimelock.LockError) as err:
        runtimelock.load(bad)
    assert str(err.value) == f"{bad}: components.openssl lacks sha256"
    bad.write_text("{")
    with pytest.raises(runtimelock.LockError, match=r"runtime\.lock\.json: .*nox -s runtime -- --update"):
        runtimelock.load(bad)


def _sources_paragraph(pkg: str, version: str, orig: str, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    return (
        f"Package: {pkg}\nBinary: {pkg}\nVersion: {version}\nFormat: 3.0 (quilt)\n"
        f"Directory: pool/main/{pkg[0]}/{pkg}\n"
        f"Checksums-Sha256:\n {sha} {len(data)} {orig}\n {sha} 10 {pkg}_{version}.debian.tar.xz\n\n"
    )


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A file: Debian mirror: python3.13 3.13.2 (served) and 3.13.3 (listed only, no file) in 'sid',
    3.13.1 in 'trixie'; openssl 3.5.1 (served) and 3.6.0 (another branch) in 'trixie'."""
    m = tmp_path / "mirror"
    blobs = {
        "python3.13_3.13.1.orig.tar.xz": b"py 3.13.1",
        "python3.13_3.13.2.orig.tar.xz": b"py 3.13.2",
        "python3.13_3.13.3.orig.tar.xz": b"py 3.13.3",
        "openssl_3.5.1.orig.tar.gz": b"ossl 3.5.1",
        "openssl_3.6.0.orig.tar.gz": b"ossl 3.6.0",
    }
    suites = {
        "sid": [("python3.13", "3.13.2-1", "python3.13_3.13.2.orig.tar.xz"),
                ("python3.13", "3.13.3-1", "python3.13_3.13.3.orig.tar.xz")],
        "trixie": [("python3.13", "3.13.1-2", "python3.13_3.13.1.orig.tar.xz"),
                   ("openssl", "3.5.1-1", "openssl_3.5.1.orig.tar.gz"),
                   ("openssl", "3.6.0-1", "openssl_3.6.0.orig.tar.gz")],
    }  # fmt: skip
    for suite, rows in suites.items():
        text = "".join(_sources_paragraph(p, v, o, blobs[o]) for p, v, o in rows)
        index = m / "dists" / suite / "main" / "source" / "Sources.xz"
        index.parent.mkdir(parents=True)
        index.write_bytes(lzma.compress(text.encode()))
    for name, data in blobs.items():
        if name == "python3.13_3.13.3.orig.tar.xz":
            continue  # listed in sid's index, not served
        pkg = name.split("_")[0]
        (m / "pool" / "main" / pkg[0] / pkg).mkdir(parents=True, exist_ok=True)
        (m / "pool" / "main" / pkg[0] / pkg / name).write_bytes(data)
    return m, blobs


def _declaration(tmp_path: Path) -> Path:
    decl = tmp_path / "runtime.toml"
    decl.write_text(
        '[components.python]\nsource_package = "python3.13"\nbranch = "3.13"\nsuites = ["sid", "trixie"]\n'
        '[components.openssl]\nsource_package = "openssl"\nbranch = "3.5"\n'
        'suites = ["trixie-updates", "trixie"]\n'
    )
    return decl


def _check(tmp_path: Path, m: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["--declaration", str(_declaration(tmp_path)), "--lock", str(tmp_path / "runtime.lock.json")]
    return subprocess.run(
        [sys.executable, "-m", "owrelease.runtimecheck", *argv, "--mirror", f"file://{m}", *extra],
        capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "packaging"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_update_then_check_then_a_newer_release(
    mirror: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    m, blobs = mirror
    lock = tmp_path / "runtime.lock.json"
    # --update writes the newest *served* release of each branch (3.13.3 is listed but not on the mirror)
    r = _check(tmp_path, m, "--update")
    assert r.returncode == 0, r.stderr
    pins = runtimelock.load(lock)
    assert (pins["python"].upstream_version, pins["python"].suite) == ("3.13.2", "sid")
    assert (pins["openssl"].upstream_version, pins["openssl"].debian_version) == ("3.5.1", "3.5.1-1")
    assert pins["python"].sha256 == hashlib.sha256(blobs["python3.13_3.13.2.orig.tar.xz"]).hexdigest()
    r = _check(tmp_path, m)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "python: up to date (3.13.2: python3.13 3.13.2-1, sid); 3.13.3 (sid) is listed "
        "but the mirror does not serve python3.13_3.13.3.orig.tar.xz",
        "openssl: up to date (3.5.1: openssl 3.5.1-1, trixie)",
    ]
    # the archive moves on: 3.13.3's tarball appears; the lock is now stale and says so, and --update fixes it
    (m / "pool/main/p/python3.13/python3.13_3.13.3.orig.tar.xz").write_bytes(
        blobs["python3.13_3.13.3.orig.tar.xz"]
    )
    r = _check(tmp_path, m)
    assert r.stdout.splitlines()[0] == "python: newer release available: 3.13.3 (lock has 3.13.2)"
    assert _check(tmp_path, m, "--update").returncode == 0
    assert runtimelock.load(lock)["python"].debian_version == "3.13.3-1"


def test_fetch_verifies_against_the_lock(mirror: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    m, blobs = mirror
    assert _check(tmp_path, m, "--update").returncode == 0
    c = runtimelock.load(tmp_path / "runtime.lock.json")["openssl"]
    cache = tmp_path / "cache"
    got = runtimesrc.fetch(c, cache, mirror=f"file://{m}")
    assert got.read_bytes() == blobs["openssl_3.5.1.orig.tar.gz"]
    # a cached tarball altered in place fails in one line naming it
    got.write_bytes(b"tampered")
    with pytest.raises(runtimesrc.SourceMismatch) as err:
        runtimesrc.fetch(c, cache, mirror=f"file://{m}")
    bad = hashlib.sha256(b"tampered").hexdigest()
    assert str(err.value) == (
        "packaging/runtime.lock.json: openssl: openssl_3.5.1.orig.tar.gz "
        f"has sha256 {bad}, the lock pins {c.sha256}"
    )
    # so does a mirror serving other bytes under the pinned name (nothing is left in the cache)
    got.unlink()
    (m / "pool/main/o/openssl/openssl_3.5.1.orig.tar.gz").write_bytes(b"other")
    with pytest.raises(runtimesrc.SourceMismatch, match=r"openssl_3\.5\.1\.orig\.tar\.gz has sha256 "):
        runtimesrc.fetch(c, cache, mirror=f"file://{m}")
    assert not got.exists() and not list(got.parent.glob(".part-*"))
    # and a mirror that no longer has it
    (m / "pool/main/o/openssl/openssl_3.5.1.orig.tar.gz").unlink()
    with pytest.raises(runtimesrc.SourceMismatch, match=r"cannot fetch pool/main/o/openssl/openssl_3\.5\.1"):
        runtimesrc.fetch(c, cache, mirror=f"file://{m}")
    # the check refuses a lock whose tarball the index now lists with other bytes
    index = m / "dists/trixie/main/source/Sources.xz"
    text = lzma.decompress(index.read_bytes()).decode().replace(c.sha256, "0" * 64)
    index.write_bytes(lzma.compress(text.encode()))
    r = _check(tmp_path, m)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (
        "runtime: packaging/runtime.lock.json: openssl: openssl_3.5.1.orig.tar.gz is listed in trixie "
        f"with sha256 {'0' * 64}, the lock pins {c.sha256}\n"
    )


@pytest.mark.slow
def test_committed_lock_is_what_the_host_mirror_serves() -> None:
    """The lock's pins are listed in the host mirror's Sources indexes with the same sha256, and served."""
    lines, chosen = runtimecheck.check(runtimelock.declared(), runtimelock.load(), runtimecheck.host_mirror())
    assert [ln.split(":")[0] for ln in lines] == ["python", "openssl"]
    assert all(": up to date (" in ln or ": newer release available: " in ln for ln in lines), lines
    for name, c in runtimelock.load().items():
        assert runtimecheck.Version(chosen[name].upstream_version) >= runtimecheck.Version(c.upstream_version)
