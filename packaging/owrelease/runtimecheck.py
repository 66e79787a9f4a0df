"""``nox -s runtime``: is the runtime lock the newest the archive offers? ``-- --update`` rewrites it.

For each component of packaging/runtime.toml it reads ``dists/<suite>/main/source/Sources.xz`` of every
declared suite from the host's Debian mirror (:func:`owrelease.debmirror.host_mirror`), keeps the versions of
the declared source package whose upstream version is on the declared branch, and asks the mirror whether
their orig tarball is really there (a Sources index can list a version whose files the mirror does not
serve).  It prints one line per component::

    python: up to date (3.13.15: python3.13 3.13.15-1, sid)
    openssl: newer release available: 3.5.9 (lock has 3.5.7)

and says so when a newer version is listed but its tarball is missing.  A lock entry whose tarball the index
now lists with another sha256 is an error (exit 1), as is an unreachable mirror.  Exit 0 otherwise: a stale
lock is news, not a failure; the build keeps using exactly what the lock pins.

Parsing and version ordering are python-debian's (deb822 paragraphs, dpkg's version comparison).
"""

from __future__ import annotations

import argparse
import lzma
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Sources
from debian.debian_support import Version

from owrelease import runtimelock
from owrelease.debmirror import MirrorNotFound, host_mirror
from owrelease.runtimelock import Component, Declared, LockError

__all__ = ["Candidate", "candidates", "main", "newest"]


class CheckError(RuntimeError):
    """One line: what could not be read or does not agree."""


@dataclass(frozen=True)
class Candidate:
    component: Component
    served: bool  # the mirror answers for its orig tarball


def _get(url: str, *, head: bool = False, timeout: float = 60) -> bytes | None:
    """The body (``b""`` for HEAD); None when the mirror says 404/410."""
    req = urllib.request.Request(url, method="HEAD" if head else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return b"" if head else bytes(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return None
        raise CheckError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(getattr(exc, "reason", exc), FileNotFoundError):  # file: mirrors
            return None
        raise CheckError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def _served(url: str) -> bool:
    if url.startswith("file:"):
        return Path(urllib.request.url2pathname(url.removeprefix("file:"))).is_file()
    return _get(url, head=True) is not None


def _on_branch(upstream: str, branch: str) -> bool:
    return upstream == branch or upstream.startswith(branch + ".")


def candidates(decl: Declared, mirror: str, indexes: dict[str, bytes | None]) -> list[Candidate]:
    """Every version of ``decl`` on its branch in its suites, each with whether the mirror serves it."""
    found: list[Candidate] = []
    for suite in decl.suites:
        if suite not in indexes:
            raw = _get(f"{mirror}/dists/{suite}/main/source/Sources.xz")
            indexes[suite] = lzma.decompress(raw) if raw is not None else None
        text = indexes[suite]
        if text is None:
            continue  # a suite this mirror does not carry (e.g. no -updates yet)
        for para in Sources.iter_paragraphs(text.decode("utf-8", "replace"), use_apt_pkg=False):
            if para.get("Package") != decl.source_package:
                continue
            version = Version(para["Version"])
            upstream = str(version.upstream_version)
            if not _on_branch(upstream, decl.branch):
                continue
            origs = [
                f
                for f in para.get("Checksums-Sha256", [])
                if ".orig.tar." in f["name"] and not f["name"].endswith((".asc", ".sig"))
            ]
            if len(origs) != 1:
                continue  # a native package, or several orig components: not something we build
            orig = origs[0]
            c = Component(
                name=decl.name,
                source_package=decl.source_package,
                branch=decl.branch,
                upstream_version=upstream,
                debian_version=str(version),
                suite=suite,
                directory=para["Directory"],
                orig_tarball=orig["name"],
                size=int(orig["size"]),
                sha256=orig["sha256"],
            )
            found.append(Candidate(c, _served(f"{mirror}/{c.directory}/{c.orig_tarball}")))
    return found


def _rank(c: Candidate, decl: Declared) -> tuple[Version, int, Version]:
    # newest upstream first; then the first declared suite; then the newest Debian revision
    return (Version(c.component.upstream_version), -decl.suites.index(c.component.suite),
            Version(c.component.debian_version))  # fmt: skip


def newest(found: list[Candidate], decl: Declared) -> tuple[Candidate | None, Candidate | None]:
    """(newest served candidate, newest listed candidate)."""
    served = [c for c in found if c.served]
    best = max(served, key=lambda c: _rank(c, decl)) if served else None
    listed = max(found, key=lambda c: _rank(c, decl)) if found else None
    return best, listed


def _describe(c: Component) -> str:
    return f"{c.upstream_version}: {c.source_package} {c.debian_version}, {c.suite}"


def check(
    decls: dict[str, Declared], lock: dict[str, Component] | None, mirror: str
) -> tuple[list[str], dict[str, Component]]:
    """(one line per component, the newest served pin of each)."""
    indexes: dict[str, bytes | None] = {}
    lines: list[str] = []
    chosen: dict[str, Component] = {}
    for name, decl in decls.items():
        found = candidates(decl, mirror, indexes)
        pinned = (lock or {}).get(name)
        for c in found:  # first: a pin the archive now contradicts is an error, served or not
            same_name = pinned is not None and c.component.orig_tarball == pinned.orig_tarball
            if pinned is not None and same_name and c.component.sha256 != pinned.sha256:
                raise CheckError(
                    f"packaging/runtime.lock.json: {name}: {pinned.orig_tarball} is listed in "
                    f"{c.component.suite} with sha256 {c.component.sha256}, the lock pins {pinned.sha256}"
                )
        best, listed = newest(found, decl)
        if best is None:
            raise CheckError(
                f"{name}: no {decl.source_package} {decl.branch}.x orig tarball served in "
                + ", ".join(decl.suites)
            )
        chosen[name] = best.component
        note = ""
        if listed is not None and Version(listed.component.upstream_version) > Version(
            best.component.upstream_version
        ):
            note = (
                f"; {listed.component.upstream_version} ({listed.component.suite}) is listed "
                f"but the mirror does not serve {listed.component.orig_tarball}"
            )
        if pinned is None:
            lines.append(f"{name}: not in the lock; newest: {_describe(best.component)}{note}")
            continue
        if Version(best.component.upstream_version) > Version(pinned.upstream_version):
            lines.append(
                f"{name}: newer release available: {best.component.upstream_version} "
                f"(lock has {pinned.upstream_version}){note}"
            )
        else:
            lines.append(f"{name}: up to date ({_describe(pinned)}){note}")
    return lines, chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nox -s runtime", description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="rewrite the lock with the newest served releases")
    ap.add_argument("--declaration", type=Path, default=runtimelock.DECLARATION)
    ap.add_argument("--lock", type=Path, default=runtimelock.LOCK)
    ap.add_argument("--mirror", help="Debian mirror URI (default: the host's, see owrelease.debmirror)")
    args = ap.parse_args(argv)
    try:
        decls = runtimelock.declared(args.declaration)
        lock: dict[str, Component] | None
        try:
            lock = runtimelock.load(args.lock)
        except LockError:
            if not args.update:
                raise
            lock = None  # --update writes a lock from nothing
        lines, chosen = check(decls, lock, args.mirror or host_mirror())
    except (LockError, CheckError, MirrorNotFound) as exc:
        print(f"runtime: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    if args.update:
        text = runtimelock.dump(chosen)
        if args.lock.is_file() and args.lock.read_text(encoding="utf-8") == text:
            print(f"{args.lock.name}: unchanged")
        else:
            tmp = args.lock.with_name(args.lock.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(args.lock)
            pins = ", ".join(f"{n} {c.upstream_version}" for n, c in chosen.items())
            print(f"{args.lock.name}: written ({pins})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
