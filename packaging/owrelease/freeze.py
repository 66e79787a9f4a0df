"""Freeze the application into one executable with PyInstaller (onefile), cached by a key over every input.

The PyInstaller invocation is a pure function (:func:`pyinstaller_argv`). Where it runs is a *builder*:
:class:`HostBuilder` (an interpreter on this host with ``packaging/requirements/freeze.txt`` installed) or
:class:`RootBuilder` (the Debian bullseye build root of ``owrelease.buildroot``, so the bundle needs an old
glibc). The result lands in ``build/freeze/<key>/openwatch`` with ``openwatch.json`` next to it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from owrelease import buildenv
from owrelease.model import ROOT

if TYPE_CHECKING:
    from owrelease.buildroot import BuildRoot

# bump when the way inputs become a binary changes in a way the key would not see
FREEZE_SCHEMA = "2"  # 2: the provenance record (owrelease.provenance) is written next to the binary
NAME = "openwatch"
FREEZE_REQUIREMENTS = ROOT / "packaging" / "requirements" / "freeze.txt"
ENTRY_NAME = "openwatch_entry.py"
ONDEMAND_PLAN = ROOT / "packaging" / "owrelease" / "ondemandplan.py"
ENTRY_SOURCE = "import sys\n\nfrom openwatch.cli import main\n\nsys.exit(main())\n"
# never imported by the application: kept out of the bundle
EXCLUDES = (
    "tkinter",
    "_tkinter",
    "turtle",
    "turtledemo",
    "idlelib",
    "unittest",
    "doctest",
    "pydoc",
    "pydoc_data",
    "test",
    "lib2to3",
    "ensurepip",
    "venv",
    "distutils",
    "setuptools",
    "pkg_resources",
    "pip",
    "PyInstaller",
    "pytest",
    "_pytest",
    "hypothesis",
    "jinja2",
    "owrelease",
    "numpy",
    "yaml",
)
# Compiled modules (and their libraries) that nothing the application runs needs, measured by
# bench/startup.py as members every start extracts, proven unused by tests/test_bundle_excludes.py
# (every command runs with them blocked). shutil and zipfile import bz2 and lzma only optionally.
# Kept on purpose: unicodedata (goose ENVSUB names, the idna codec), _decimal (psycopg's numeric),
# the CJK codecs (psycopg decodes a EUC_JP/SJIS/BIG5 database's client encoding with them).
UNUSED = ("bz2", "_bz2", "lzma", "_lzma", "pyexpat", "xml")
# PyInstaller runtime hooks the spec leaves out (why: in the spec, above ``scripts``).
DROP_RTHOOKS = ("pyi_rth_inspect", "pyi_rth_pkgutil", "pyi_rth_multiprocessing")


class FreezeError(RuntimeError):
    """The freeze failed; the message says where to look."""


def migration_files(src: Path) -> list[str]:
    """Names (relative to ``migrations/``) to embed: every ``*.sql`` and ``migrations.lock`` if present."""
    mdir = src / "migrations"
    names = sorted(p.name for p in mdir.glob("*.sql") if p.is_file())
    if (mdir / "migrations.lock").is_file():
        names.append("migrations.lock")
    return names


# How each kind of member is stored in the onefile archive (PyInstaller's PKG ``cdict``, by TOC typecode).
# The onefile writes every extracted member to its _MEI directory on every start; inflating zlib is most
# of that cost (bench/startup.py, "extraction"), so what is extracted is stored as is. The archive grows
# (about 11 MB to 20 MB), the packages hardly do: rpm and dpkg compress their payload anyway. The
# bootstrap scripts stay compressed: they are read into memory, never extracted.
STORE = {
    "BINARY": False,
    "EXTENSION": False,
    "DATA": False,
    "ZIPFILE": False,
    "EXECUTABLE": False,
    "PYZ": False,  # its modules are compressed one by one inside it
    "SYMLINK": False,
    "PYSOURCE": True,
    "PYMODULE": True,
    "SPLASH": True,
}
SPEC_NAME = f"{NAME}.spec"


def spec_source(migrations: Sequence[str] = (), *, strip: bool = True) -> str:
    """The PyInstaller spec (onefile), a pure function of its arguments. Paths come at run time, after
    ``--`` on PyInstaller's command line (``--src`` the source tree, ``--entry`` the entry script), so the
    same text serves the host and the build root (where the tree is bind-mounted elsewhere).

    ``strip``: PyInstaller's strip (False in the build root, whose binaries are stripped once before
    patchelf rewrites some of them: ``strip`` after patchelf breaks their LOAD segments).
    """
    settings = {
        "excludes": [*EXCLUDES, *UNUSED],
        "migrations": list(migrations),
        "strip": strip,
        "cdict": STORE,
        # psycopg_binary: psycopg imports it by name at run time; openwatch._build: the freeze-time stamp
        "hiddenimports": ["openwatch._build", "psycopg_binary"],
        "drop_rthooks": list(DROP_RTHOOKS),
    }
    return f"""# Written by owrelease.freeze.spec_source; inputs: below, and after -- on the command line.
import argparse
import json
import os
import sys

from PyInstaller.utils.hooks import collect_data_files, collect_submodules

S = json.loads({json.dumps(json.dumps(settings, sort_keys=True))})
ap = argparse.ArgumentParser()
ap.add_argument("--src", required=True)
ap.add_argument("--entry", required=True)
args = ap.parse_args()
src = args.src
# owrelease.ondemandplan, copied beside the entry script by the freeze (standard library only; its text
# is in the cache key): the tree being frozen need not hold the toolkit
work = os.path.dirname(os.path.abspath(args.entry))
sys.path.insert(0, work)
import ondemandplan  # noqa: E402
# the first runtime hook: openwatch.ondemand's finder must be on sys.meta_path before anything imports
rthook = os.path.join(work, "openwatch_rth_ondemand.py")
with open(rthook, "w", encoding="utf-8") as fh:
    fh.write("from openwatch import ondemand\\n\\nondemand.install()\\n")

# the UI that `serve` reads with importlib.resources from openwatch/server/ui/, then every migration
datas = [(os.path.join(src, "openwatch", "server", "ui"), "openwatch/server/ui")]
datas += [(os.path.join(src, "migrations", name), "migrations") for name in S["migrations"]]
# (not openwatch/migrations/sql: in a source tree and a wheel it is the migrations; frozen, they are the
# migrations/ above, and a second copy was 47 more files written and removed at every start)
datas += collect_data_files("openwatch", excludes=["migrations/sql", "migrations/sql/**"])
# every openwatch.* module: openwatch.server (and what it imports) is only imported lazily by `serve`,
# so the import graph from the entry script alone would miss it
hiddenimports = S["hiddenimports"] + collect_submodules("openwatch")

a = Analysis(
    [args.entry],
    pathex=[src],
    datas=datas,
    hiddenimports=hiddenimports,
    excludes=S["excludes"],
    noarchive=False,
    optimize=0,
    runtime_hooks=[rthook],
)
# What the bootloader leaves in the archive and openwatch.ondemand unpacks when needed, and the
# manifest that tells it which module needs which member (owrelease.ondemandplan).
od_modules, od_data = ondemandplan.plan(a.binaries, a.datas)
manifest = os.path.join(work, "_ondemand.py")
with open(manifest, "w", encoding="utf-8") as fh:
    fh.write(ondemandplan.manifest_source(od_modules, od_data))
a.pure.append(("openwatch._ondemand", manifest, "PYMODULE"))
od_options = [
    (ondemandplan.OPTION_PREFIX + name, None, "OPTION") for name in ondemandplan.members(od_modules, od_data)
]
# PyInstaller runs its runtime hooks at every start, before the entry script. Three come only because
# the modules are in the graph, and cost about 40 ms per start (bench/startup.py): pyi_rth_inspect
# (imports inspect, opens base_library.zip with zipfile) for inspect.getsource of frozen code,
# pyi_rth_pkgutil for pkgutil.iter_modules over the PYZ, pyi_rth_multiprocessing for spawned frozen
# children. OpenWatch reads no source, walks no packages and starts no multiprocessing child
# (hypercorn is served in-process; it imports multiprocessing for a type only): they are left out,
# and tests/test_bundle_excludes.py checks the archive holds none of them.
scripts = [s for s in a.scripts if s[0] not in S["drop_rthooks"]]
pyz = PYZ(a.pure)
exe = EXE(
    pyz,
    scripts,
    od_options,
    a.binaries,
    a.datas,
    [],
    name={NAME!r},
    debug=False,
    bootloader_ignore_signals=False,
    strip=S["strip"],
    upx=False,
    runtime_tmpdir=None,
    console=True,
    cdict=S["cdict"],
)
"""


def pyinstaller_argv(src: Path, work: Path, dist: Path) -> list[str]:
    """Arguments after ``python -m PyInstaller``. Pure: absolute paths in, the same list out.

    ``src`` is the source tree, ``work`` holds the entry script and the spec (both written by the caller:
    :func:`spec_source`) and PyInstaller's scratch files, ``dist`` receives the executable.
    """
    return [
        "--noconfirm",
        "--clean",
        "--log-level=WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work / "build"),
        str(work / "spec" / SPEC_NAME),
        "--",
        "--src",
        str(src),
        "--entry",
        str(work / ENTRY_NAME),
    ]


class Builder(Protocol):
    name: str
    strip: bool  # whether PyInstaller strips what it collects (``--strip``)

    def identity(self) -> str:
        """Everything about the builder that can change the output (interpreter, libc, platform)."""
        ...

    def run(self, src: Path, scratch: Path, argv_for: ArgvFactory, env: dict[str, str]) -> None:
        """Run PyInstaller so that ``scratch/dist/openwatch`` appears."""
        ...

    def runtime(self) -> dict[str, str]:
        """The python, openssl, libpq and psycopg versions the bundle will run on (:data:`RUNTIME_PROBE`)."""
        ...

    def provenance(self, binary: Path) -> dict[str, Any]:
        """Where each member of ``binary`` came from (owrelease.provenance), while the builder exists."""
        ...


# What the bundle runs on, asked of the builder's interpreter (the bundle carries exactly its libpython,
# _ssl and psycopg-binary's libpq) and recorded in openwatch/_build.py: the frozen `--version` then reads
# four strings instead of loading libssl and libpq at start-up.
RUNTIME_PROBE = """
import json, os, platform, ssl
os.environ["PSYCOPG_IMPL"] = "binary"
import psycopg
from psycopg import pq
v = pq.version()
print(json.dumps({"python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION.split()[1],
                  "libpq": f"{v // 10000}.{v % 10000}", "psycopg": psycopg.__version__}, sort_keys=True))
"""


def parse_runtime(stdout: str) -> dict[str, str]:
    data = json.loads(stdout.strip().splitlines()[-1])
    if not isinstance(data, dict) or set(data) != {"python", "openssl", "libpq", "psycopg"}:
        raise FreezeError(f"freeze: the runtime probe printed {stdout.strip()!r}")
    return {str(k): str(v) for k, v in data.items()}


class ArgvFactory(Protocol):
    def __call__(self, src: Path, work: Path, dist: Path, /) -> list[str]: ...


@dataclass
class HostBuilder:
    """PyInstaller on this host, from a private venv holding exactly ``freeze.txt``.

    ``python``: an interpreter that already has freeze.txt installed; by default a venv is made (once, cached
    by the pins and the base interpreter) under ``build/freeze/venv-<hash>`` from ``base``, the running
    interpreter, so nothing else installed on the host can leak into the bundle.
    """

    python: str | None = None
    base: str = sys.executable
    cache: Path = ROOT / "build" / "freeze"
    name: str = "host"
    strip: bool = True  # nothing here was patched: PyInstaller's --strip is safe

    def _venv(self) -> str:
        if self.python:
            return self.python
        tag = hashlib.sha256(
            FREEZE_REQUIREMENTS.read_bytes() + os.path.realpath(self.base).encode() + sys.version.encode()
        ).hexdigest()[:12]
        venv = self.cache / f"venv-{tag}"
        python = venv / "bin" / "python"
        self.cache.mkdir(parents=True, exist_ok=True)
        with (self.cache / f"venv-{tag}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (venv / ".complete").exists():
                shutil.rmtree(venv, ignore_errors=True)
                for argv in (
                    [self.base, "-m", "venv", str(venv)],
                    [str(python), "-m", "pip", "install", "--quiet", "-r", str(FREEZE_REQUIREMENTS)],
                ):
                    res = subprocess.run(argv, capture_output=True, text=True, check=False)
                    if res.returncode != 0:
                        raise FreezeError(f"freeze: {' '.join(argv)} failed:\n{res.stdout}{res.stderr}")
                (venv / ".complete").write_text("ok\n", encoding="utf-8")
        self.python = str(python)
        return self.python

    def identity(self) -> str:
        probe = (
            "import sys, platform, sysconfig, os;"
            "print(sys.version.replace(chr(10), ' '), platform.machine(), os.confstr('CS_GNU_LIBC_VERSION'),"
            " sysconfig.get_config_var('Py_ENABLE_SHARED'), sep='|')"
        )
        try:
            out = subprocess.run([self._venv(), "-c", probe], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise FreezeError(f"freeze: cannot run {self.python}: {exc}") from exc
        return f"host|{out.stdout.strip()}"

    def runtime(self) -> dict[str, str]:
        res = subprocess.run([self._venv(), "-c", RUNTIME_PROBE], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise FreezeError(
                f"freeze: the runtime probe failed in {self.python}: {res.stderr.strip()[-300:]}"
            )
        return parse_runtime(res.stdout)

    def check(self) -> None:
        code = "import PyInstaller; print(PyInstaller.__version__)"
        res = subprocess.run([self._venv(), "-c", code], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise FreezeError(
                f"freeze: no PyInstaller for {self.python}: pip install -r {FREEZE_REQUIREMENTS}"
            )

    def run(self, src: Path, scratch: Path, argv_for: ArgvFactory, env: dict[str, str]) -> None:
        self.check()
        argv = [self._venv(), "-m", "PyInstaller", *argv_for(src, scratch / "work", scratch / "dist")]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        # a private PyInstaller cache: --clean on a shared ~/.cache/pyinstaller races with other builds
        private = {"PYINSTALLER_CONFIG_DIR": str(scratch / "pyi-config")}
        _run(argv, env={**clean, **env, **private}, log=scratch / "pyinstaller.log")

    def provenance(self, binary: Path) -> dict[str, Any]:
        # a host freeze records no origins: owrelease.sbom lists its members unattributed
        return {"schema": 1, "builder": self.name, "identity": self.identity()}


@dataclass
class RootBuilder:
    """PyInstaller inside the build root (owrelease.buildroot): the tree is bind-mounted read-only, the
    scratch dir read-write; the root's venv already holds freeze.txt.

    No ``--strip``: the root's layer ``strip_binaries`` stripped every binary once, before ``patchelf``
    rewrote psycopg-binary's libraries, and stripping those again would break their LOAD segments.
    """

    root: BuildRoot
    name: str = "buildroot"
    strip: bool = False

    @classmethod
    def ensure(cls, cache_dir: Path) -> RootBuilder:
        from owrelease import buildroot

        return cls(buildroot.ensure(cache_dir))

    def identity(self) -> str:
        return f"buildroot|{self.root.key}"

    def runtime(self) -> dict[str, str]:
        res = self.root.run([self.root.python, "-c", RUNTIME_PROBE])
        if res.returncode != 0:
            tail = (res.stderr or "").strip()[-300:]
            raise FreezeError(f"freeze: the runtime probe failed in the build root: {tail}")
        return parse_runtime(res.stdout)

    def run(self, src: Path, scratch: Path, argv_for: ArgvFactory, env: dict[str, str]) -> None:
        in_src, in_scratch = Path("/ow/src"), Path("/ow/scratch")
        argv = [
            self.root.python,
            "-m",
            "PyInstaller",
            *argv_for(in_src, in_scratch / "work", in_scratch / "dist"),
        ]
        # PYTHONPATH: --collect-submodules/--collect-data openwatch must see the bind-mounted tree
        env = {**env, "PYINSTALLER_CONFIG_DIR": str(in_scratch / "pyi-config"), "PYTHONPATH": str(in_src)}
        res = self.root.run(argv, binds={src: f"{in_src}:ro", scratch: str(in_scratch)}, env=env)
        log = scratch / "pyinstaller.log"
        text = f"{res.stdout or ''}{res.stderr or ''}"
        log.write_text(text, encoding="utf-8")
        if res.returncode != 0:
            # the scratch dir (and the log in it) is removed on the way out: the message carries the tail
            tail = "".join(text.splitlines(keepends=True)[-15:])
            code = res.returncode
            raise FreezeError(f"freeze: PyInstaller failed in the build root (exit {code}):\n{tail}")

    def provenance(self, binary: Path) -> dict[str, Any]:
        from owrelease import provenance

        return provenance.collect_root(self.root, binary)


def _run(argv: list[str], *, env: dict[str, str], log: Path) -> None:
    with log.open("w", encoding="utf-8") as fh:
        res = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if res.returncode != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:])
        raise FreezeError(f"freeze: PyInstaller failed (exit {res.returncode}); log {log}:\n{tail}")


@dataclass(frozen=True)
class FrozenBinary:
    path: Path
    sha256: str
    size: int
    glibc_floor: str
    builder: str
    key: str
    commit: str
    build_time: str
    cached: bool
    runtime: dict[str, str] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("cached")
        data["path"] = self.path.name
        return data


def build_stamp(root: Path = ROOT) -> tuple[str, str, int]:
    """(commit, build time, SOURCE_DATE_EPOCH) for openwatch/_build.py."""
    sde = buildenv.source_date_epoch(root)
    return buildenv.commit_id(root), buildenv.iso_utc(sde), sde


def write_build_module(
    src: Path, commit: str, build_time: str, runtime: dict[str, str] | None = None
) -> Path:
    """The git-ignored ``openwatch/_build.py``; rewritten only when its content changes."""
    target = src / "openwatch" / "_build.py"
    text = (
        '"""Written by owrelease.freeze at build time (git-ignored). Read by openwatch.buildinfo."""\n\n'
        f"COMMIT = {commit!r}\nBUILD_TIME = {build_time!r}\n"
        + (f"RUNTIME = {dict(sorted(runtime.items()))!r}\n" if runtime else "")
    )
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return target


def _app_files(src: Path) -> list[Path]:
    files = [p for p in (src / "openwatch").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [src / "migrations" / n for n in migration_files(src)]
    return sorted(files)


def cache_key(src: Path, builder_identity: str, argv: Sequence[str], spec: str = "") -> str:
    """sha256 over every input: sources (incl. _build.py), migrations, pins, argv, spec, builder, schema."""
    h = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)

    feed("schema", FREEZE_SCHEMA.encode())
    feed("builder", builder_identity.encode())
    feed("argv", "\0".join(argv).encode())
    feed("spec", spec.encode())
    feed("entry", ENTRY_SOURCE.encode())
    feed("pins", FREEZE_REQUIREMENTS.read_bytes())
    feed("ondemandplan", ONDEMAND_PLAN.read_bytes())  # the spec imports it: its text shapes the binary
    for path in _app_files(src):
        feed("file:" + path.relative_to(src).as_posix(), path.read_bytes())
    return h.hexdigest()[:32]


def _glibc(binary: Path, max_allowed: str) -> tuple[str, str]:
    """(measured floor, note). The gate raises when the bundle needs more than ``max_allowed``."""
    try:
        from owrelease import elfgate
    except ImportError:
        host = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 0"
        floor = host.split()[-1]
        return floor, f"elfgate unavailable: assuming the host glibc {floor} as the floor"
    floor = elfgate.measure_floor(binary)
    return floor, ""


def gate(binary: Path, max_allowed: str) -> None:
    from owrelease import elfgate

    elfgate.check(binary, max_allowed)


def freeze(
    builder: Builder,
    *,
    src: Path = ROOT,
    cache: Path | None = None,
    glibc_max: str | None = None,
    log: Callable[[str], object] = print,
    stamp: tuple[str, str, int] | None = None,
) -> FrozenBinary:
    """Freeze (or reuse) the binary. ``glibc_max``: when given, elfgate.check enforces it.

    ``stamp`` (commit, build time, SOURCE_DATE_EPOCH) defaults to :func:`build_stamp` of ``src``.
    """
    cache = cache or (src / "build" / "freeze")
    commit, build_time, sde = stamp or build_stamp(src)
    runtime = builder.runtime()
    write_build_module(src, commit, build_time, runtime)
    migrations = migration_files(src)

    spec = spec_source(migrations, strip=builder.strip)
    key = cache_key(
        src, builder.identity(), pyinstaller_argv(Path("/SRC"), Path("/WORK"), Path("/DIST")), spec
    )
    final = cache / key
    binary = final / NAME
    meta = final / f"{NAME}.json"
    if binary.is_file() and meta.is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        log(f"freeze: reusing build/freeze/{key}/{NAME} (nothing changed)")
        return FrozenBinary(path=binary, cached=True, **{k: v for k, v in data.items() if k != "path"})

    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"tmp-{key[:8]}-", dir=cache))
    try:
        (scratch / "work").mkdir()
        (scratch / "work" / ENTRY_NAME).write_text(ENTRY_SOURCE, encoding="utf-8")
        shutil.copyfile(ONDEMAND_PLAN, scratch / "work" / ONDEMAND_PLAN.name)  # the spec imports it
        (scratch / "work" / "spec").mkdir()
        (scratch / "work" / "spec" / SPEC_NAME).write_text(spec, encoding="utf-8")
        env = {"PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": str(sde), "PYTHONDONTWRITEBYTECODE": "1"}
        builder.run(src, scratch, pyinstaller_argv, env)
        out = scratch / "dist" / NAME
        if not out.is_file():
            raise FreezeError(f"freeze: PyInstaller produced no {out}")
        if glibc_max:
            gate(out, glibc_max)
        floor, note = _glibc(out, glibc_max or "")
        if note:
            log(f"freeze: {note}")
        data = out.read_bytes()
        result = FrozenBinary(
            path=binary,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            glibc_floor=floor,
            builder=builder.name,
            key=key,
            commit=commit,
            build_time=build_time,
            cached=False,
            runtime=runtime,
        )
        stage = scratch / "result"
        stage.mkdir()
        from owrelease import provenance

        try:
            provenance.write(builder.provenance(out), stage / provenance.PROVENANCE_NAME)
        except provenance.ProvenanceError as exc:
            raise FreezeError(f"freeze: provenance: {exc}") from None
        shutil.copy2(out, stage / NAME)
        (stage / f"{NAME}.json").write_text(json.dumps(result.metadata(), indent=2) + "\n", encoding="utf-8")
        try:
            stage.rename(final)
        except OSError:
            if not binary.is_file():  # a concurrent build of the same key won the rename: use it
                raise
        log(f"freeze: built {NAME} ({result.size / 1e6:.1f} MB, glibc >= {floor}, {builder.name}) key {key}")
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def host_description() -> str:
    return f"{platform.system()} {platform.machine()} {os.confstr('CS_GNU_LIBC_VERSION')}"


def export(frozen: FrozenBinary, dest_dir: Path) -> Path:
    """Copy the binary and its JSON to ``dest_dir`` (build/ for the freeze session)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / NAME
    shutil.copy2(frozen.path, target)
    shutil.copy2(frozen.path.with_name(f"{NAME}.json"), dest_dir / f"{NAME}.json")
    return target
