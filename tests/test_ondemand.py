"""Members unpacked on demand (openwatch.ondemand, owrelease.ondemandplan, the bootloader patch).

The plan is checked on real ELF files of this host; the unpacking on the real release binary's archive,
from this process and in the frozen binary itself, whose file writes into its _MEI directory are read
from ``strace``: a command writes the members every start needs and those it uses, no others.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from owrelease import bundle, ondemandplan

from openwatch import ondemand
from tests.conftest import ROOT, Database, ReleaseBuild


def _readelf_needed(path: str) -> list[str]:
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _ext(name: str) -> str:
    """The running interpreter's compiled stdlib module ``name`` (a real ELF of this host)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin and spec.origin.endswith(".so"), f"{name} is not a shared module"
    return spec.origin


def _lib(soname: str) -> str:
    """Where this host's dynamic linker finds ``soname``."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(soname + " ") and "x86-64" in line:
            return line.rsplit("=> ", 1)[1].strip()
    raise AssertionError(f"{soname} not found by ldconfig -p")


def test_needed_reads_what_readelf_reads() -> None:
    for path in (_ext("_ssl"), _ext("_hashlib"), _lib("libssl.so.3"), sys.executable):
        real = os.path.realpath(path)
        assert ondemandplan.needed(real) == _readelf_needed(real), path
    assert ondemandplan.needed(str(ROOT / "migrations" / "0001_initial.sql")) == []


def test_module_names_of_members() -> None:
    assert ondemandplan.module_name("python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so") == "_ssl"
    assert (
        ondemandplan.module_name("psycopg_binary/pq.cpython-313-x86_64-linux-gnu.so") == "psycopg_binary.pq"
    )
    assert ondemandplan.module_name("_argon2_cffi_bindings/_ffi.abi3.so") == "_argon2_cffi_bindings._ffi"
    assert ondemandplan.module_name("base_library.zip") is None


def test_plan_on_real_libraries() -> None:
    """_ssl brings libssl and libcrypto (each before what links it); zlib is imported before our hook and
    stays eager with what it links; a library an eager member links stays eager; data only by prefix."""
    pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dyn = f"{pyver}/lib-dynload"
    libz = _lib("libz.so.1")
    binaries = [
        ("libssl.so.3", _lib("libssl.so.3"), "BINARY"),
        ("libcrypto.so.3", _lib("libcrypto.so.3"), "BINARY"),
        ("libz.so.1", libz, "BINARY"),
        (f"{dyn}/{os.path.basename(_ext('_ssl'))}", _ext("_ssl"), "EXTENSION"),
        (f"{dyn}/{os.path.basename(_ext('zlib'))}", _ext("zlib"), "EXTENSION"),
        (f"{dyn}/{os.path.basename(_ext('_json'))}", _ext("_json"), "EXTENSION"),
    ]
    libpython = sysconfig.get_config_var("INSTSONAME")
    if libpython and os.path.exists(os.path.join(sysconfig.get_config_var("LIBDIR"), libpython)):
        binaries.append((libpython, os.path.join(sysconfig.get_config_var("LIBDIR"), libpython), "BINARY"))
    datas = [
        ("migrations/0001_initial.sql", str(ROOT / "migrations" / "0001_initial.sql"), "DATA"),
        ("openwatch/server/ui/index.html", str(ROOT / "openwatch" / "server" / "ui" / "index.html"), "DATA"),
        ("psycopg-3.3.9.dist-info/METADATA", str(ROOT / "README.md"), "DATA"),
        ("certifi/cacert.pem", str(ROOT / "README.md"), "DATA"),
        ("base_library.zip", str(ROOT / "README.md"), "ZIPFILE"),
    ]
    modules, data = ondemandplan.plan(binaries, datas)
    ssl_members = modules["_ssl"]
    assert ssl_members[-1].endswith(os.path.basename(_ext("_ssl")))
    assert ssl_members.index("libcrypto.so.3") < ssl_members.index("libssl.so.3") < len(ssl_members) - 1
    assert modules["_json"] == [f"{dyn}/{os.path.basename(_ext('_json'))}"]
    assert "zlib" not in modules
    members = ondemandplan.members(modules, data)
    if "libz.so.1" in ondemandplan.needed(os.path.realpath(_ext("zlib"))):
        assert "libz.so.1" not in members  # linked by eager zlib
    assert not any(m.startswith("libpython") for m in members)
    assert data == [
        "migrations/0001_initial.sql",
        "openwatch/server/ui/index.html",
        "psycopg-3.3.9.dist-info/METADATA",
    ]


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\0b"])
def test_unsafe_member_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ondemand.ExtractError, match="not a plain relative path"):
        ondemand._safe_path(str(tmp_path), name)


# --- the real archive, unpacked from this process -------------------------------------------------------


@pytest.fixture
def unpacker(release_build: ReleaseBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """openwatch.ondemand pointed at the release binary's archive and a private directory, as the frozen
    runtime hook would set it up (its manifest: the archive's own OPTION entries)."""
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    home = tmp_path / "_MEI0"
    home.mkdir(mode=0o700)
    read = bundle.read(binary, with_elf=False)
    data = tuple(sorted(n for n in _ondemand_names(read) if read.members[n].typecode == "x"))
    monkeypatch.setattr(sys, "_MEIPASS", str(home), raising=False)
    monkeypatch.setattr(ondemand, "_executable", lambda: str(binary))
    monkeypatch.setattr(ondemand, "_data", data)
    monkeypatch.setattr(ondemand, "_toc", None)
    monkeypatch.setattr(ondemand, "_done", set())
    yield home


@pytest.mark.packages
def test_toc_reader_agrees_with_pyinstaller(release_build: ReleaseBuild) -> None:
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(binary))
    ours = ondemand._read_toc(str(binary))
    theirs = {n: e for n, e in reader.toc.items() if e[4] in ("b", "x")}
    assert set(ours) == set(theirs)
    with binary.open("rb") as fh:
        for name, (offset, length, size, compressed, _mode) in ours.items():
            fh.seek(offset)
            blob = fh.read(length)
            assert (length, size, compressed) == theirs[name][1:4], name
            if not compressed:
                assert blob == reader.extract(name), name


@pytest.mark.packages
def test_ensure_unpacks_whole_files_with_the_bootloaders_modes(unpacker: Path) -> None:
    ondemand.ensure("migrations/")
    written = sorted(p.name for p in (unpacker / "migrations").iterdir())
    expected = sorted(
        p.name for p in (ROOT / "migrations").iterdir() if p.suffix == ".sql" or p.name == "migrations.lock"
    )
    assert written == expected
    for name in written:
        path = unpacker / "migrations" / name
        assert path.read_bytes() == (ROOT / "migrations" / name).read_bytes(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(unpacker.rglob("*.part"))
    assert not (unpacker / "openwatch").exists()  # the UI: not asked for, not written
    assert ondemand.names("migrations/") == expected


@pytest.mark.packages
def test_metadata_is_unpacked_when_importlib_metadata_asks(
    unpacker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "meta_path", [ondemand.OnDemandFinder, *sys.meta_path])
    assert not list(unpacker.glob("*.dist-info"))
    (dist,) = importlib.metadata.distributions(name="psycopg", path=[str(unpacker)])
    assert dist.version and (unpacker / f"psycopg-{dist.version}.dist-info" / "METADATA").is_file()


# --- the frozen binary: what each command writes, read from strace --------------------------------------


def _written(
    binary: Path, args: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the binary under strace; the member names it created in its _MEI directory (by open or rename)."""
    trace = tmp_path / "trace"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWATCH_")}
    run_env.update({"TMPDIR": str(tmpdir), **(env or {})})
    r = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=openat,rename,renameat,renameat2",
            "-o",
            str(trace),
            str(binary),
            *args,
        ],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    made: set[str] = set()
    home = re.escape(str(tmpdir)) + r"/_MEI[^/]+/"
    for line in trace.read_text().splitlines():
        if "openat(" in line and "O_CREAT" in line and "= -1" not in line:
            m = re.search(r'"' + home + r'([^"]+)"', line)
            if m:
                made.add(m.group(1))
        elif "rename" in line and "= 0" in line:
            targets = re.findall(r'"' + home + r'([^"]+)"', line)
            if len(targets) == 2:
                made.discard(targets[0])
                made.add(targets[1])
    assert not list(tmpdir.iterdir()), "the _MEI directory outlived the command"
    return r, made


# members no offline command may unpack: the driver and its libraries, TLS, sockets, the UI, the codecs
HEAVY = ("_psycopg", "pq.", "libpq", "libkrb5", "libssl", "_ssl", "_socket", "_asyncio", "_decimal",
         "unicodedata", "_codecs_", "_multibytecodec", "app.js", "index.html", "style.css")  # fmt: skip


def _base(member: str) -> str:
    return member.rsplit("/", 1)[-1]


def _ondemand_names(read: bundle.Bundle) -> set[str]:
    """The members the archive's OPTION entries leave for openwatch.ondemand."""
    p = ondemandplan.OPTION_PREFIX
    return {o.removeprefix(p) for o in read.options if o.startswith(p)}


def _members(binary: Path) -> tuple[set[str], set[str]]:
    """(eager file members, on-demand members) of the binary's archive."""
    read = bundle.read(binary, with_elf=False)
    od = _ondemand_names(read)
    files = {p for p, m in read.members.items() if m.typecode in ("b", "x")}
    assert od and od <= files
    return files - od, od


@pytest.mark.packages
@pytest.mark.slow
def test_version_writes_only_what_every_start_needs(release_build: ReleaseBuild, tmp_path: Path) -> None:
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    eager, _od = _members(binary)
    r, made = _written(binary, ["--version"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "schema:     46 (46 migrations)" in r.stdout  # counted from the archive's names, none unpacked
    assert made == eager
    assert len(eager) < 12, sorted(eager)
    assert not any(m.startswith(("migrations/", "psycopg", "openwatch/server/ui/")) for m in eager)


@pytest.mark.packages
@pytest.mark.slow
def test_each_command_unpacks_what_it_uses(release_build: ReleaseBuild, tmp_path: Path) -> None:
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    eager, od = _members(binary)
    r, made = _written(binary, ["migrate", "list"], tmp_path)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("46 migrations, schema version 46"), r.stderr
    migrations = {m for m in od if m.startswith("migrations/")}
    assert migrations and migrations <= made
    # hashing the files brings hashlib and its OpenSSL; nothing of the driver, TLS, the UI or the codecs
    assert "libcrypto.so.3" in made
    assert sorted(m for m in made if _base(m).startswith(HEAVY)) == []
    r, made = _written(binary, ["check-config", "--secrets", "/dev/null"], tmp_path)
    assert r.stderr and not made & migrations, r.stderr  # it ran (the TLS files are absent here)
    assert sorted(m for m in made if _base(m).startswith(HEAVY)) == []
    r, made = _written(binary, ["--version", "--log-level", "info"], tmp_path)
    assert r.returncode == 0 and not (made - eager) & migrations


@pytest.mark.packages
@pytest.mark.slow
@pytest.mark.pg
def test_migrate_unpacks_the_driver_and_its_libraries(
    release_build: ReleaseBuild, tmp_path: Path, fresh_db: Database
) -> None:
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    _eager, od = _members(binary)
    r, made = _written(binary, ["migrate", "status"], tmp_path, env={"OPENWATCH_DATABASE_DSN": fresh_db.dsn})
    assert r.returncode == 0, r.stderr
    libs = {m for m in od if m.startswith("psycopg_binary.libs/")}
    assert libs and libs <= made
    assert not {m for m in made if m.startswith("openwatch/server/ui/")}


@pytest.mark.packages
@pytest.mark.slow
def test_no_space_to_unpack_is_one_line_and_nothing_left(release_build: ReleaseBuild, tmp_path: Path) -> None:
    """A tmpfs with room for what every start writes, not for the driver: one line naming the member and
    the directory, exit 1, and the directory removed."""
    binary = Path(release_build.frozen.path)  # type: ignore[attr-defined]
    eager, _od = _members(binary)
    read = bundle.read(binary, with_elf=False)
    room = sum(read.members[m].size for m in eager) + 3 * 2**20
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size={room},mode=1777 tmpfs {mnt} && "
        f"TMPDIR={mnt} OPENWATCH_DATABASE_DSN=postgres://ow:secret@127.0.0.1:1/ow {binary} migrate status; "
        f"echo exit=$?; ls -A {mnt}"
    )
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert re.fullmatch(
        rf"openwatch: cannot unpack \S+ into {re.escape(str(mnt))}/_MEI\w+: No space left on device", lines[0]
    ), lines
    assert "secret" not in r.stderr
    assert r.stdout.strip().splitlines() == ["exit=1"], r.stdout


def test_inert_from_source() -> None:
    """From a source tree nothing is on demand: ensure is a no-op and the finder is not installed."""
    code = (
        "import sys; from openwatch import ondemand; ondemand.install(); ondemand.ensure('migrations/'); "
        "print(any(f is ondemand.OnDemandFinder for f in sys.meta_path), ondemand.names('migrations/'))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "[]"]
