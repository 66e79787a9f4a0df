"""The bullseye build root: made once and cached, entered safely, and it freezes the real app at <= 2.28.

This module also holds the frozen binary every portability test runs (``frozen_openwatch``): built by
``owrelease.freeze`` in the build root when that module is there, else by our own PyInstaller call
in the root. Both are cached on disk by their inputs, so a second session reuses them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from owrelease import buildroot, elfgate, runtimelock

ROOT = Path(__file__).resolve().parent.parent
CACHE = buildroot.DEFAULT_CACHE
OWN_FREEZE = ROOT / "build" / "portability"
TARGET = "2.28"
PY = runtimelock.load()["python"]  # the CPython the lock pins
LIBPYTHON = f"libpython{PY.branch}.so.1.0"

pytestmark = [pytest.mark.chroot, pytest.mark.slow]

ENTRY = "import sys\n\nfrom openwatch.cli import main\n\nsys.exit(main())\n"


@functools.cache
def build_root() -> buildroot.BuildRoot:
    assert buildroot.usable(), "this host cannot make a build root (needs root, unshare, chroot, debootstrap)"
    return buildroot.ensure(CACHE)


def _tree_digest(*dirs: Path) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.name != "_build.py":
                h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def pyinstaller_in_root(br: buildroot.BuildRoot, out: Path) -> Path:
    """Our own freeze: PyInstaller in the root on an entry script of the real app, sources bound read-only."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "entry.py").write_text(ENTRY)
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    # no --strip: the root's binaries are stripped once, before patchelf (buildroot.strip_binaries)
    argv = [br.python, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level=WARN", "--onefile",
            "--name", "openwatch", "--distpath", "/ow/out/dist", "--workpath", "/ow/out/work",
            "--specpath", "/ow/out", "--paths", "/ow/src", "--collect-submodules", "openwatch",
            "--collect-data", "openwatch", "--hidden-import", "psycopg_binary"]  # fmt: skip
    for name in migrations:
        argv += ["--add-data", f"/ow/src/migrations/{name}:migrations"]
    argv.append("/ow/out/entry.py")
    res = br.run(
        argv,
        binds={
            ROOT / "openwatch": "/ow/src/openwatch:ro",
            ROOT / "migrations": "/ow/src/migrations:ro",
            out: "/ow/out",
        },
        env={"HOME": "/root", "PYTHONPATH": "/ow/src", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out / "dist" / "openwatch"


@functools.cache
def frozen_openwatch_path() -> Path:
    """The binary under test: owrelease.freeze in the build root if available, else our own call.

    OPENWATCH_PORTABILITY_BINARY names an existing binary instead (e.g. the release's build/openwatch).
    """
    given = os.environ.get("OPENWATCH_PORTABILITY_BINARY")
    if given:
        return Path(given).resolve()
    br = build_root()
    try:
        from owrelease import freeze
    except ImportError:
        freeze = None  # type: ignore[assignment]
    if freeze is not None and hasattr(freeze, "RootBuilder") and hasattr(freeze, "freeze"):
        result = freeze.freeze(
            freeze.RootBuilder(root=br), glibc_max=TARGET, log=lambda m: print(m, file=sys.stderr)
        )
        return Path(result.path)
    key = hashlib.sha256(f"{br.key}|{_tree_digest(ROOT / 'openwatch', ROOT / 'migrations')}".encode())
    out = OWN_FREEZE / key.hexdigest()[:16]
    binary = out / "dist" / "openwatch"
    if not binary.is_file():
        shutil.rmtree(out, ignore_errors=True)
        pyinstaller_in_root(br, out)
        elfgate.check(binary, TARGET)
    return binary


@pytest.fixture(scope="session")
def frozen_openwatch() -> Path:
    return frozen_openwatch_path()


@pytest.fixture(scope="session")
def root() -> buildroot.BuildRoot:
    return build_root()


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as fp:
        return [ln.split()[4] for ln in fp if (ln.split()[4] + "/").startswith(prefix)]


# ------------------------------------------------------------------ the root itself


def test_usable_on_this_host() -> None:
    assert buildroot.usable() is True


def test_root_is_bullseye_with_our_interpreter(root: buildroot.BuildRoot) -> None:
    assert root.path.is_dir() and (root.path / "etc" / "debian_version").read_text().startswith("11.")
    libc = root.run(["/usr/bin/getconf", "GNU_LIBC_VERSION"], binds={}, env={})
    assert libc.stdout.strip() == "glibc 2.31"
    probe = root.run(
        [root.python, "-c", "import ssl, sys, sysconfig; print(sys.version_info[:2], ssl.OPENSSL_VERSION, "
         "sysconfig.get_config_var('Py_ENABLE_SHARED'), sysconfig.get_config_var('CONFIG_ARGS'))"],
        binds={}, env={},
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    major, minor = PY.branch.split(".")
    ossl = runtimelock.load()["openssl"].upstream_version
    assert probe.stdout.startswith(f"({major}, {minor}) OpenSSL {ossl} "), probe.stdout
    assert " 1 " in probe.stdout and "ac_cv_func_sem_clockwait=no" in probe.stdout
    assert "-include /opt/ow/glibc228.h" in probe.stdout
    manifest = json.loads((root.path.parent / "manifest.json").read_text())
    assert manifest["key"] == root.base_key
    # the layers are part of the identity, stripping before patching
    assert root.key.startswith(root.base_key + "+strip-") and "+openssl-dedupe-" in root.key, root.key
    assert manifest["sources"] == {c.source_package: c.debian_version for c in runtimelock.load().values()}


def test_interpreter_and_openssl_stay_at_or_below_228(root: buildroot.BuildRoot) -> None:
    """Every ELF of the compiled CPython and OpenSSL (not the venv's wheels: the gate covers the bundle)."""
    for tree in ("opt/ow/python", "opt/ow/openssl"):
        floor = elfgate.measure_floor(root.path / tree)
        assert elfgate.parse_version(floor) <= elfgate.parse_version(TARGET), (tree, floor)
        elfgate.check(root.path / tree, TARGET)


def test_bootloader_is_our_patched_build(root: buildroot.BuildRoot) -> None:
    res = root.run(
        [root.python, "-c", "import PyInstaller, os; print(os.path.dirname(PyInstaller.__file__))"],
        binds={},
        env={},
    )
    pkg = root.path / res.stdout.strip().lstrip("/")
    run = pkg / "bootloader" / "Linux-64bit-intel" / "run"
    assert b"no executable temporary directory" in run.read_bytes()
    assert elfgate.parse_version(elfgate.measure_floor(run)) <= elfgate.parse_version(TARGET)


def test_openssl_dedupe_layer(root: buildroot.BuildRoot) -> None:
    """psycopg-binary's libraries use our OpenSSL: no renamed copy left, every import defined by ours."""
    site = root.path / buildroot.SITE_PACKAGES.lstrip("/")
    libs = sorted(p.name for p in (site / "psycopg_binary.libs").iterdir())
    assert [n for n in libs if n.startswith("libpq-")], libs
    assert not [n for n in libs if n.startswith(("libssl", "libcrypto"))], libs
    needed = root.run(
        ["/bin/sh", "-c", f"readelf -d {buildroot.SITE_PACKAGES}/psycopg_binary.libs/libpq-*"], check=True
    ).stdout
    assert "[libssl.so.3]" in needed and "[libcrypto.so.3]" in needed, needed
    report = buildroot.openssl_symbol_report(root)
    assert report and all(missing == [] for missing in report.values()), report
    marker = json.loads((root.path.parent / "layer-openssl-dedupe.json").read_text())
    assert root.key.endswith("+" + marker["layer"])
    assert marker["probe"][-2:] == [
        f"{buildroot.OPENSSL_LIB}/libcrypto.so.3",
        f"{buildroot.OPENSSL_LIB}/libssl.so.3",
    ]
    # ours is the 3.5 LTS, like the copy psycopg-binary's wheel brought (kept aside)
    aside = sorted((root.path / "opt/ow/openssl-dedupe/removed").glob("libssl-*.so.3"))
    assert aside, "the duplicate libssl was not kept aside"
    inroot = "/" + str(aside[0].relative_to(root.path))
    assert buildroot.openssl_symbol_report(root, [inroot])[inroot] == []
    # the check can fail: against libcrypto alone, libpq's SSL_* imports are undefined
    libpq = next(c for c in report if "/libpq-" in c)
    missing = buildroot.openssl_symbol_report(root, [libpq], ours=[f"{buildroot.OPENSSL_LIB}/libcrypto.so.3"])
    assert [m for m in missing[libpq] if m.startswith("SSL_")], missing
    # idempotent and cheap: a second application finds its marker
    t0 = time.monotonic()
    assert (
        buildroot.dedupe_openssl(buildroot.BuildRoot(key=root.base_key, path=root.path, python=root.python))
        == marker["layer"]
    )
    assert time.monotonic() - t0 < 1


def _readelf_lw(root: buildroot.BuildRoot, inroot: list[str]) -> dict[str, str]:
    script = 'for f in "$@"; do echo "=== $f"; readelf -lW "$f"; done'
    out = root.run(["/bin/sh", "-c", script, "sh", *inroot], check=True).stdout
    return {part.partition("\n")[0]: part.partition("\n")[2] for part in out.split("=== ")[1:]}


def test_strip_layer_strips_once_before_patchelf(root: buildroot.BuildRoot) -> None:
    """Every ELF of CPython, OpenSSL and the venv is stripped; patchelf came after, and every LOAD maps."""
    marker = json.loads((root.path.parent / "layer-strip.json").read_text())
    assert f"+{marker['layer']}+" in root.key
    paths = buildroot.strippable(root)
    names = {p.rsplit("/", 1)[1] for p in paths}
    assert LIBPYTHON in names and "libssl.so.3" in names and "run" in names, sorted(names)
    assert [p for p in paths if "/lib-dynload/" in p] and [p for p in paths if "/psycopg_binary.libs/" in p]
    # (psycopg-binary's own libssl/libcrypto were stripped too, then moved aside by the dedupe layer)
    assert marker["files"] >= len(paths) and marker["bytes_after"] < marker["bytes_before"]
    sections = root.run(
        ["/bin/sh", "-c", 'for f in "$@"; do readelf -SW "$f" | grep -qF .symtab && echo "$f"; done; true',
         "sh", *paths], check=True,
    ).stdout.split()  # fmt: skip
    assert sections == [], f"not stripped: {sections}"
    listings = _readelf_lw(root, paths)
    assert len(listings) == len(paths)
    assert {p: bad for p, text in listings.items() if (bad := buildroot.misaligned_loads(text))} == {}
    # the patched libraries really were patched after stripping (their DT_NEEDED names our OpenSSL)
    libpq = next(p for p in paths if "/libpq-" in p)
    assert "[libssl.so.3]" in root.run(["readelf", "-dW", libpq], check=True).stdout
    # the check can fail: bullseye's strip on a patchelf'ed libpq is exactly the corruption it guards against
    res = root.run(["/bin/sh", "-c", f"cp {libpq} /tmp/ow-libpq.so && strip /tmp/ow-libpq.so && "
                    "readelf -lW /tmp/ow-libpq.so; rm -f /tmp/ow-libpq.so"], check=True)  # fmt: skip
    assert buildroot.misaligned_loads(res.stdout), "strip after patchelf no longer breaks libpq?"
    with pytest.raises(buildroot.BuildRootError):
        buildroot.misaligned_loads("no program headers\n")
    # idempotent and cheap: a second application finds its marker
    t0 = time.monotonic()
    base = buildroot.BuildRoot(key=root.base_key, path=root.path, python=root.python)
    assert buildroot.strip_binaries(base) == marker["layer"]
    assert time.monotonic() - t0 < 1


def test_cached_call_is_fast_and_stable(root: buildroot.BuildRoot) -> None:
    t0 = time.monotonic()
    again = buildroot.ensure(CACHE)
    elapsed = time.monotonic() - t0
    assert (again.key, again.path, again.python, again.base_key) == (
        root.key,
        root.path,
        root.python,
        root.base_key,
    )
    assert elapsed < 5, elapsed
    print(f"cached ensure(): {elapsed:.3f} s")


def test_run_binds_env_and_leaves_no_mount(root: buildroot.BuildRoot, tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given.txt").write_text("from the host\n")
    res = root.run(
        ["/bin/sh", "-c", "env | sort; cat /in/ro/given.txt; echo made > /in/rw/out.txt; "
         "touch /in/ro/nope 2>/dev/null && echo WROTE-RO; test -r /proc/self/status && echo proc-ok; "
         "test -c /dev/null && echo dev-ok"],
        binds={rw: "/in/rw", ro: "/in/ro:ro"},
        env={"OW_X": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    env_lines = [ln for ln in lines if "=" in ln]
    names = {k.split("=")[0] for k in env_lines}
    assert {"OW_X", "PATH"} <= names <= {"OW_X", "PATH", "PWD", "SHLVL"}, names  # sh adds PWD (SHLVL)
    assert "from the host" in lines and "proc-ok" in lines and "dev-ok" in lines
    assert "WROTE-RO" not in lines
    assert (rw / "out.txt").read_text() == "made\n"
    assert not (ro / "nope").exists()
    assert _mounts_under(root.path) == []  # nothing leaks into the host's namespace


def test_failing_command_reports_one_line(root: buildroot.BuildRoot) -> None:
    with pytest.raises(buildroot.BuildRootError) as err:
        root.run(["/bin/sh", "-c", "echo boom >&2; exit 3"], binds={}, env={}, check=True)
    assert str(err.value) == "/bin/sh -c echo boom >&2; exit 3 failed with exit status 3: boom"


# ------------------------------------------------------------------ freezing the real app in the root


def test_pyinstaller_in_root_on_the_real_app_passes_the_228_gate(root: buildroot.BuildRoot) -> None:
    key = hashlib.sha256(f"{root.key}|{_tree_digest(ROOT / 'openwatch', ROOT / 'migrations')}".encode())
    out = OWN_FREEZE / key.hexdigest()[:16]
    binary = out / "dist" / "openwatch"
    if not binary.is_file():
        shutil.rmtree(out, ignore_errors=True)
        pyinstaller_in_root(root, out)
    floor = elfgate.measure_floor(binary)
    assert elfgate.parse_version(floor) <= (2, 28), floor
    elfgate.check(binary, TARGET)
    # the gate would fail it against an older target, naming files and symbols
    with pytest.raises(elfgate.GlibcGateError) as err:
        elfgate.check(binary, "2.17")
    assert all("@GLIBC_" in ln or "(version need)" in ln for ln in str(err.value).splitlines()[1:])
    res = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("openwatch "), res.stderr


def test_frozen_binary_under_test_is_gated(frozen_openwatch: Path) -> None:
    floor = elfgate.measure_floor(frozen_openwatch)
    assert elfgate.parse_version(floor) <= (2, 28), floor
    print(f"frozen binary {frozen_openwatch}: {frozen_openwatch.stat().st_size} bytes, floor GLIBC_{floor}")


def test_every_bundled_elf_has_page_aligned_loads(frozen_openwatch: Path, tmp_path: Path) -> None:
    """Every ELF in the onefile (CArchiveReader): readelf -lW shows offset % align == vaddr % align."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(frozen_openwatch))
    elfs = []
    for i, name in enumerate(sorted(reader.toc)):
        data = reader.extract(name)
        if data is None or data[:4] != b"\x7fELF":
            continue
        out = tmp_path / f"{i:04d}"
        out.write_bytes(data)
        elfs.append((name, out))
    names = [n for n, _ in elfs]
    assert [n for n in names if n.startswith("psycopg_binary.libs/libpq-")], names
    assert [n for n in names if n.startswith(LIBPYTHON)] and [n for n in names if "lib-dynload/" in n]
    problems = {}
    for name, path in elfs:
        listing = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True)
        if bad := buildroot.misaligned_loads(listing.stdout):
            problems[name] = bad
    assert problems == {}, problems
    print(f"{len(elfs)} bundled ELFs, every LOAD segment page-aligned")


def bundle_contents(binary: Path) -> tuple[dict[str, int], list[str]]:
    """(CArchive member -> uncompressed size, Python modules in the PYZ)."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    members = {name: entry[2] for name, entry in reader.toc.items()}
    pyz = [name for name, entry in reader.toc.items() if entry[4] == "z"]
    modules = [m for name in pyz for m in reader.open_embedded_archive(name).toc]
    return members, modules


UNUSED = ("test", "unittest", "tkinter", "idlelib", "lib2to3", "pydoc_data", "sqlite3", "distutils", "pip",
          "setuptools", "PyInstaller", "ensurepip", "turtledemo", "curses", "dbm")  # fmt: skip


def test_bundle_is_lean(frozen_openwatch: Path) -> None:
    """No test suites, no unused stdlib packages, one interpreter; the biggest members are listed."""
    members, modules = bundle_contents(frozen_openwatch)
    biggest = sorted(((size, name) for name, size in members.items()), reverse=True)[:12]
    print("biggest members:", *(f"{size:>10} {name}" for size, name in biggest), sep="\n  ")
    tops = {m.split(".")[0] for m in modules}
    assert not tops & set(UNUSED), sorted(tops & set(UNUSED))
    assert not [m for m in modules if ".tests." in m or m.endswith(".tests")]
    dynload = [n for n in members if "lib-dynload/" in n]
    assert not [
        n for n in dynload if n.rsplit("/", 1)[1].split(".")[0] in ("_tkinter", "_sqlite3", "_curses")
    ]
    assert len([n for n in members if n.startswith(LIBPYTHON)]) == 1
