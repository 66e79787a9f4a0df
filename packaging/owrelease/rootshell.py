"""Running things in (and for) the build root: the root's handle, chrooted commands in private mount
namespaces, and named, resumable, timed build steps.

Shared by the root (:mod:`owrelease.buildroot`), its recipes (:mod:`owrelease.recipes`) and its layers
(:mod:`owrelease.layer_strip`, :mod:`owrelease.layer_dedupe`); it imports none of them.

Mounts are made only inside private mount namespaces (``unshare --mount``), so they vanish with the process
even if it is killed, and the host never sees one under the cache: copying a root can never walk into
``/proc``.  Each namespace also unmounts explicitly before it exits.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAKE_JOBS", "PREFIX", "BuildRoot", "BuildRootError", "host_run", "in_root", "log", "sha", "step"]

PREFIX = "/opt/ow"  # everything we build lives under it, inside the root
SANE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
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


def step(name: str, fn: Callable[..., Any], *args: Any, stamps: Path | None = None, **kwargs: Any) -> Any:
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


def host_run(argv: list[str], *, log_file: Path | None = None, namespace: bool = False) -> None:
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


def in_root(root: Path, script: str, log_file: Path, env: Mapping[str, str] | None = None) -> str:
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


def sha(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


HOST_CA = "host-ca.pem"  # the host's CA bundle, copied under PREFIX when the root is built


def pip_env(root: Path) -> dict[str, str]:
    """pip's environment inside ``root``: no version check, and the host's CA bundle when the root holds
    one (pip in the root trusts what pip on this host trusts: a site may intercept TLS with its own CA)."""
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if (root / PREFIX.lstrip("/") / HOST_CA).is_file():
        env["PIP_CERT"] = f"{PREFIX}/{HOST_CA}"
    return env


def layer_marker(br: BuildRoot, name: str) -> Path:
    """``<key>/layer-<name>.json``: what a layer applied on top of the built root recorded."""
    return br.path.parent / f"layer-{name}.json"


def layer_record(br: BuildRoot, name: str) -> dict[str, Any]:
    """The layer's record, or {} when it was never applied (or was undone)."""
    marker = layer_marker(br, name)
    return dict(json.loads(marker.read_text(encoding="utf-8"))) if marker.is_file() else {}


def write_layer_record(br: BuildRoot, name: str, record: dict[str, Any]) -> None:
    """Written last, by rename, so that a layer interrupted half way is redone."""
    marker = layer_marker(br, name)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.rename(marker)
