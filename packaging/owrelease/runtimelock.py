"""The runtime the frozen binary carries: what is declared (packaging/runtime.toml) and what is pinned
(packaging/runtime.lock.json).

Why a lock: the build root compiles CPython and OpenSSL from Debian's orig tarballs, and a build must use the
same bytes every time, so the exact upstream version, Debian version, suite, tarball and sha256 are committed.
Builds read only the lock; :mod:`owrelease.runtimecheck` (``nox -s runtime``) reads the archive and rewrites
it.

The lock's shape, read by others (the SBOM, the release manifest)::

    {"components": {"python": {"source_package": "python3.13", "branch": "3.13",
                               "upstream_version": "3.13.15", "debian_version": "3.13.15-1",
                               "suite": "sid", "directory": "pool/main/p/python3.13",
                               "orig_tarball": "python3.13_3.13.15.orig.tar.xz", "size": 23160540,
                               "sha256": "..."},
                    "openssl": {...}}}

Stdlib only: the build (and nox itself) imports it before any venv exists.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["COMPONENTS", "Component", "Declared", "LockError", "declared", "dump", "load"]

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = ROOT / "packaging" / "runtime.toml"
LOCK = ROOT / "packaging" / "runtime.lock.json"
COMPONENTS = ("python", "openssl")  # the build root needs exactly these


class LockError(RuntimeError):
    """The declaration or the lock is missing or malformed; ``str()`` is one line naming the file."""


@dataclass(frozen=True)
class Declared:
    """One component as packaging/runtime.toml declares it."""

    name: str
    source_package: str
    branch: str
    suites: tuple[str, ...]


@dataclass(frozen=True)
class Component:
    """One component as the lock pins it."""

    name: str
    source_package: str
    branch: str
    upstream_version: str
    debian_version: str
    suite: str
    directory: str  # the pool directory on the mirror, e.g. pool/main/o/openssl
    orig_tarball: str
    size: int
    sha256: str

    def entry(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("name")
        return data


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def declared(path: Path = DECLARATION) -> dict[str, Declared]:
    """Component name -> its declaration, in :data:`COMPONENTS` order."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LockError(f"{_rel(path)}: {exc}") from None
    table = doc.get("components", {})
    out: dict[str, Declared] = {}
    for name in COMPONENTS:
        c = table.get(name)
        if not isinstance(c, dict):
            raise LockError(f"{_rel(path)}: no [components.{name}] table")
        suites = c.get("suites")
        if not all(isinstance(c.get(k), str) and c[k] for k in ("source_package", "branch")) or not (
            isinstance(suites, list) and suites and all(isinstance(s, str) for s in suites)
        ):
            raise LockError(f"{_rel(path)}: [components.{name}] needs source_package, branch and suites")
        out[name] = Declared(name, c["source_package"], c["branch"], tuple(suites))
    return out


def load(path: Path = LOCK) -> dict[str, Component]:
    """Component name -> its pinned source, in :data:`COMPONENTS` order."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LockError(f"{_rel(path)}: {exc} (run: nox -s runtime -- --update)") from None
    table = doc.get("components") if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        raise LockError(f"{_rel(path)}: no 'components' object")
    out: dict[str, Component] = {}
    fields = [f for f in Component.__dataclass_fields__ if f != "name"]
    for name in COMPONENTS:
        entry = table.get(name)
        if not isinstance(entry, dict) or any(f not in entry for f in fields):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            raise LockError(f"{_rel(path)}: components.{name} lacks {', '.join(missing)}")
        sha = str(entry["sha256"])
        if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
            raise LockError(f"{_rel(path)}: components.{name}.sha256 is not a sha256: {sha!r}")
        out[name] = Component(name=name, **{f: entry[f] for f in fields})
    return out


def dump(components: dict[str, Component]) -> str:
    """The lock file's text (stable: sorted keys, one trailing newline)."""
    doc = {"components": {n: components[n].entry() for n in COMPONENTS}}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
