"""The Debian 11 (bullseye, glibc 2.31) build root in which the frozen binary is made: the root and its cache.

Why: a PyInstaller onefile carries libpython, the extension modules and their libraries; each asks the
target's glibc for symbol versions no newer than the glibc it was *linked* against.  Built on bookworm (2.36)
the bundle needs 2.35; built here, with CPython and OpenSSL compiled from the Debian orig tarballs pinned in
``packaging/runtime.lock.json``, it needs at most GLIBC_2.28 (RHEL 8).  The gate (:mod:`owrelease.elfgate`)
proves the result; this module only makes the place.  Where each concern lives:

* this module: the root's inputs, its key and its cache (debootstrap, copy, apt, then the recipes in order);
* :mod:`owrelease.runtimelock` / :mod:`owrelease.runtimesrc`: what is pinned, and the verified tarballs;
* :mod:`owrelease.recipes.openssl`, :mod:`owrelease.recipes.cpython`, :mod:`owrelease.recipes.bootloader`:
  how each is built;
* :mod:`owrelease.layer_strip`, :mod:`owrelease.layer_dedupe`: the layers applied on top of a built root;
* :mod:`owrelease.rootshell`: running commands in the root.

Builds read only the lock: no version is resolved over the network at build time (the tarballs it names are
fetched once and cached by sha256), so two builds of one commit compile the same bytes.

Layout under ``cache_dir`` (e.g. ``~/.cache/openwatch-release/buildroot``)::

    <key>/root/            the build root (key = sha256 of every input, the lock included)
    <key>/manifest.json    inputs, sources, timings
    <key>/layer-*.json     layers applied on top of the built root (strip, then openssl-dedupe)
    sources/<sha256>/      the lock's orig tarballs, verified
    pristine-<base>/       debootstrap minbase as it came (plus /etc/hosts): a clean bullseye for tests
    work-<key>/            a build in progress (resumed step by step, removed when done)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from owrelease import runtimelock, runtimesrc
from owrelease.debmirror import host_mirror
from owrelease.layer_dedupe import OPENSSL_LIB, dedupe_openssl, openssl_symbol_report
from owrelease.layer_strip import SITE_PACKAGES, elf_kind, misaligned_loads, strip_binaries, strippable
from owrelease.recipes import bootloader, cpython, openssl
from owrelease.rootshell import (
    HOST_CA,
    PREFIX,
    BuildRoot,
    BuildRootError,
    host_run,
    in_root,
    log,
    pip_env,
    sha,
    step,
)

__all__ = [
    "DEFAULT_CACHE",
    "OPENSSL_LIB",
    "SITE_PACKAGES",
    "BuildRoot",
    "BuildRootError",
    "dedupe_openssl",
    "elf_kind",
    "ensure",
    "ensure_pristine",
    "misaligned_loads",
    "openssl_symbol_report",
    "strip_binaries",
    "strippable",
    "usable",
]

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "packaging" / "buildroot"
# Outside the work tree on purpose: every clone on a machine (CI's fresh clones, bench/build.py's) shares one
# root of ~1.2 GB that takes ~10 min to make; the key below keeps a shared root honest.
DEFAULT_CACHE = Path(
    os.environ.get("OWRELEASE_BUILDROOT_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openwatch-release" / "buildroot"
)
# bump when a step's shell script changes: the key reads the recipes' arguments, not their code
RECIPE_VERSION = "2"

SUITE = "bullseye"
VARIANT = "minbase"
PACKAGES = [
    "build-essential",
    "ca-certificates",
    "libbz2-dev",
    "libffi-dev",
    "liblzma-dev",
    "patch",
    "pkg-config",
    "uuid-dev",
    "xz-utils",
    "zlib1g-dev",
]
FREEZE_TXT = ROOT / "packaging" / "requirements" / "freeze.txt"
FALLBACK_REQUIREMENTS = "pyinstaller==6.22.3\npsycopg[binary]==3.3.9\n"
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\towbuild\n"
VENV_PYTHON = f"{cpython.VENV}/bin/python"


def usable() -> bool:
    """True when this host can make and enter a build root: root, chroot, unshare, debootstrap."""
    if os.geteuid() != 0:
        return False
    if not (shutil.which("chroot") and shutil.which("unshare")):
        return False
    if shutil.which("debootstrap") is None:
        probe = subprocess.run(["apt-cache", "policy", "debootstrap"], capture_output=True, text=True)
        if probe.returncode != 0 or "Candidate: (none)" in probe.stdout or "Candidate:" not in probe.stdout:
            return False
    try:
        ok = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return ok.returncode == 0


# ---------------------------------------------------------------- keys


def _requirements() -> tuple[str, str]:
    """The requirements text and where it came from."""
    if FREEZE_TXT.is_file():
        return FREEZE_TXT.read_text(), str(FREEZE_TXT.relative_to(ROOT))
    return FALLBACK_REQUIREMENTS, "fallback (packaging/requirements/freeze.txt absent)"


def _base_inputs() -> dict[str, object]:
    return {
        "suite": SUITE,
        "mirror": host_mirror(),
        "variant": VARIANT,
        "hosts": HOSTS,
        "recipe": RECIPE_VERSION,
    }


def _inputs(lock: dict[str, runtimelock.Component]) -> dict[str, object]:
    """Everything the root is made of; the lock's pins included, so the key is known before building."""
    reqs, origin = _requirements()
    return {
        **_base_inputs(),
        "packages": PACKAGES,
        "runtime": {name: c.entry() for name, c in lock.items()},
        "openssl_configure": openssl.CONFIGURE,
        "python_configure": cpython.CONFIGURE,
        "python_unused": cpython.UNUSED,
        "glibc228.h": (HERE / "glibc228.h").read_text(),
        "bootloader_patch": (HERE / "pyinstaller-bootloader.patch").read_text(),
        "pyinstaller_sdists": bootloader.PYINSTALLER_SDIST_SHA256,
        "requirements": reqs,
        "requirements_origin": origin,
    }


# ---------------------------------------------------------------- helpers


@contextmanager
def _locked(cache_dir: Path, name: str) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f"{name}.lock").open("w") as fp:
        fcntl.flock(fp, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fp, fcntl.LOCK_UN)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as fp:
        for line in fp:
            mnt = line.split()[4].replace("\\040", " ")
            if (mnt + "/").startswith(prefix):
                found.append(mnt)
    return found


def _safe_rmtree(path: Path) -> None:
    if not path.exists():
        return
    if mounts := _mounts_under(path):
        raise BuildRootError(f"refusing to remove {path}: still mounted beneath it: {', '.join(mounts)}")
    shutil.rmtree(path)


def _copy_tree(src: Path, dst: Path) -> None:
    if mounts := _mounts_under(src):
        raise BuildRootError(f"refusing to copy {src}: mounted beneath it: {', '.join(mounts)}")
    subprocess.run(["cp", "-a", "--", str(src), str(dst)], check=True)


def _debootstrap(target: Path, log_file: Path) -> None:
    if shutil.which("debootstrap") is None:
        install = ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"]
        try:
            host_run(install, log_file=log_file)
        except BuildRootError:  # a fresh machine may have no package lists yet
            host_run(["apt-get", "update"], log_file=log_file)
            host_run(install, log_file=log_file)
    # debootstrap mounts /proc and /sys in the target: keep those mounts in a private namespace.
    host_run(
        ["debootstrap", f"--variant={VARIANT}", SUITE, str(target), host_mirror()],
        log_file=log_file,
        namespace=True,
    )
    (target / "etc" / "hosts").write_text(HOSTS)


# ---------------------------------------------------------------- public


def ensure_pristine(cache_dir: Path) -> BuildRoot:
    """A bullseye minbase root exactly as debootstrap made it (plus /etc/hosts); made once, cached."""
    cache_dir = Path(cache_dir).resolve()
    key = sha(_base_inputs())
    path = cache_dir / f"pristine-{key[:16]}"
    with _locked(cache_dir, "pristine"):
        if (path / ".complete").is_file():
            return BuildRoot(key=key, path=path, python="")
        work = cache_dir / f"pristine-{key[:16]}.work"
        _safe_rmtree(work)
        _safe_rmtree(path)
        cache_dir.mkdir(parents=True, exist_ok=True)
        step(f"debootstrap {SUITE} ({VARIANT})", _debootstrap, work, cache_dir / "pristine.log")
        (work / ".complete").write_text(json.dumps(_base_inputs(), indent=1) + "\n")
        work.rename(path)
        return BuildRoot(key=key, path=path, python="")


def ensure(cache_dir: Path) -> BuildRoot:
    """The build root for the current inputs: reused when cached, else made (several minutes)."""
    cache_dir = Path(cache_dir).resolve()
    t0 = time.monotonic()
    try:
        lock = runtimelock.load()
    except runtimelock.LockError as exc:
        raise BuildRootError(str(exc)) from None
    inputs = _inputs(lock)
    key = sha(inputs)
    with _locked(cache_dir, f"root-{key[:16]}"):
        root = cache_dir / key / "root"
        if (cache_dir / key / "manifest.json").is_file() and root.is_dir():
            br = BuildRoot(key=key, path=root, python=VENV_PYTHON)
            log(f"cached root {key[:16]} ({time.monotonic() - t0:.2f} s)")
            return _with_layers(br)
        return _with_layers(_build(cache_dir, key, inputs, lock, t0))


def _with_layers(br: BuildRoot) -> BuildRoot:
    """Apply the layers in order (idempotent, each with its marker) and name them in the key.

    Stripping comes first: ``strip`` must never see a file ``patchelf`` has rewritten.
    """
    stripped = strip_binaries(br)
    layer = dedupe_openssl(br)
    return BuildRoot(key=f"{br.key}+{stripped}+{layer}", path=br.path, python=br.python, base_key=br.key)


def _prepare(pristine: Path, root: Path) -> None:
    _safe_rmtree(root)
    _copy_tree(pristine, root)
    (root / "etc" / "apt" / "sources.list").write_text(f"deb {host_mirror()} {SUITE} main\n")
    (root / "etc" / "apt" / "apt.conf.d" / "90openwatch").write_text(
        'APT::Install-Recommends "false";\nAcquire::Retries "3";\n'
    )
    opt = root / PREFIX.lstrip("/")
    (opt / "src").mkdir(parents=True)
    shutil.copy(HERE / "glibc228.h", opt / "glibc228.h")
    shutil.copy(HERE / "pyinstaller-bootloader.patch", opt / "pyinstaller-bootloader.patch")
    (opt / "requirements.txt").write_text(_requirements()[0])


def _sources(cache_dir: Path, lock: dict[str, runtimelock.Component], src: Path) -> dict[str, str]:
    """Copy the lock's verified tarballs into the root's /opt/ow/src; name -> tarball."""
    out = {}
    for name, c in lock.items():
        try:
            tarball = runtimesrc.fetch(c, cache_dir)
        except runtimesrc.SourceMismatch as exc:
            raise BuildRootError(str(exc)) from None
        shutil.copy(tarball, src / c.orig_tarball)
        out[name] = c.orig_tarball
    return out


def _build(
    cache_dir: Path, key: str, inputs: dict[str, object], lock: dict[str, runtimelock.Component], t0: float
) -> BuildRoot:
    pristine = ensure_pristine(cache_dir)
    work = cache_dir / f"work-{key[:16]}"
    if work.exists() and not (work / ".done-copy-pristine-bullseye").is_file():
        _safe_rmtree(work)  # an attempt that failed before its root existed: start over
    work.mkdir(parents=True, exist_ok=True)
    root = work / "root"
    log_file = work / "build.log"
    log(f"building root {key[:16]} in {work} (log: {log_file})")
    sources = {n: f"{c.source_package} {c.debian_version} ({c.suite})" for n, c in lock.items()}
    log(f"sources (packaging/runtime.lock.json): {sources}")
    step("copy pristine bullseye", _prepare, pristine.path, root, stamps=work)
    opt = root / PREFIX.lstrip("/")
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if host_ca.is_file():
        shutil.copy(host_ca, opt / HOST_CA)
    root_pip = pip_env(root)
    st = {"stamps": work}

    step("apt-get update + install build tools", in_root, root,
         f"apt-get update -q && apt-get install -y -q {' '.join(PACKAGES)} && apt-get clean",
         log_file, **st)  # fmt: skip
    # never resumed: the tarballs are checked against the lock on every attempt
    tarballs = step("pinned sources", _sources, cache_dir, lock, opt / "src")
    step("build OpenSSL", in_root, root, openssl.script(tarballs["openssl"]), log_file, **st)
    step("build CPython", in_root, root,
         cpython.script(tarballs["python"], lock["python"].branch), log_file, **st)  # fmt: skip
    py = f"{cpython.PREFIX_DIR}/bin/python{lock['python'].branch}"
    step("venv + requirements", in_root, root,
         f"rm -rf {cpython.VENV} && {py} -m venv {cpython.VENV} "
         f"&& {VENV_PYTHON} -m pip install -q --no-cache-dir -r {PREFIX}/requirements.txt",
         log_file, root_pip, **st)  # fmt: skip
    step("patched PyInstaller bootloader", in_root, root, bootloader.script(), log_file, root_pip, **st)

    final = cache_dir / key
    manifest = {
        "key": key,
        "inputs": inputs,
        "sources": {c.source_package: c.debian_version for c in lock.values()},
        "orig_sha256": {c.orig_tarball: c.sha256 for c in lock.values()},
        "python": VENV_PYTHON,
        "seconds": round(time.monotonic() - t0, 1),
        "pip_freeze": in_root(root, f"{VENV_PYTHON} -m pip freeze", log_file).split(),
    }
    if mounts := _mounts_under(work):
        raise BuildRootError(f"step 'finish' failed: mounted beneath {work}: {mounts}")
    _safe_rmtree(final)
    final.mkdir(parents=True)
    for tree in ("openssl", "python"):  # build trees; the tarballs stay
        shutil.rmtree(opt / "src" / tree, ignore_errors=True)
    root.rename(final / "root")
    shutil.move(str(log_file), final / "build.log")
    (final / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(work)
    log(f"root {key[:16]} ready in {manifest['seconds']} s")
    return BuildRoot(key=key, path=final / "root", python=VENV_PYTHON)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="buildroot", description="make or reuse the bullseye build root")
    ap.add_argument("cache_dir", type=Path, nargs="?", default=DEFAULT_CACHE)
    ap.add_argument("--pristine", action="store_true", help="only the pristine bullseye root")
    args = ap.parse_args(argv)
    try:
        br = ensure_pristine(args.cache_dir) if args.pristine else ensure(args.cache_dir)
    except BuildRootError as exc:
        print(f"buildroot: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"key": br.key, "path": str(br.path), "python": br.python}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
