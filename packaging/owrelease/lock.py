"""``migrations/migrations.lock``: shipped migrations never change.

The lock records the sha256 and the name of every shipped migration, one ``<sha256>  <name>`` line a
file in version order (the format of ``sha256sum``, so ``cd migrations && sha256sum -c migrations.lock``
works too), under a comment header. `check` fails the build when:

* a locked file was edited (its sha256 differs), removed, or renumbered (its bytes now live under
  another name);
* a file that is not locked yet does not continue the numbering: versions must run 1, 2, 3, ...
  with no gap and no duplicate.

`write` (``nox -s lock``) appends the new files to the lock. It refuses to rewrite a locked line:
a shipped migration is fixed by a new migration, never by editing the old one.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "LockError",
    "LockedFile",
    "check",
    "main",
    "problems",
    "read_lock",
    "tree_files",
    "write",
]

LOCK_NAME = "migrations.lock"
_MIGRATION = re.compile(r"^(?P<version>[0-9]+)_[^/]+\.sql$")
_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64})  (?P<name>\S+)$")
_HEADER = """\
# Shipped migrations: sha256 and file name, one line each (sha256sum format).
# A locked file never changes, moves or disappears: fix a shipped migration with a new one.
# New files continue the numbering without a gap. Regenerate with: nox -s lock
"""


class LockError(Exception):
    """The migrations break the lock; ``str()`` has one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class LockedFile:
    name: str
    sha256: str

    @property
    def version(self) -> int:
        m = _MIGRATION.match(self.name)
        return int(m["version"]) if m else -1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_files(migrations: Path) -> list[LockedFile]:
    """The migration files of a directory (``NNNN_name.sql``), in version order, with their sha256."""
    found = [
        LockedFile(p.name, _sha256(p))
        for p in migrations.iterdir()
        if p.is_file() and _MIGRATION.match(p.name)
    ]
    return sorted(found, key=lambda f: (f.version, f.name))


def read_lock(lock: Path) -> list[LockedFile]:
    """Parse the lock file; a malformed line raises `LockError` naming the line."""
    entries: list[LockedFile] = []
    bad: list[str] = []
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None or not _MIGRATION.match(m["name"]):
            bad.append(f"{lock}:{number}: not '<sha256>  <NNNN_name.sql>': {line!r}")
            continue
        entries.append(LockedFile(m["name"], m["sha"]))
    if bad:
        raise LockError(bad)
    return entries


def _numbering(files: list[LockedFile], what: str) -> list[str]:
    out: list[str] = []
    seen: dict[int, str] = {}
    for f in files:
        if f.version in seen:
            out.append(f"{what}: {f.name}: version {f.version} is also used by {seen[f.version]}")
        seen.setdefault(f.version, f.name)
    expected = 1
    for version in sorted(seen):
        if version != expected:
            out.append(
                f"{what}: {seen[version]}: version {version} leaves a gap "
                f"(expected {expected:04d}_*.sql next)"
            )
        expected = version + 1
    return out


def problems(project: Path) -> list[str]:
    """Every way the tree's migrations break the lock, one line each (empty: all good)."""
    migrations = project / "migrations"
    lock = migrations / LOCK_NAME
    if not migrations.is_dir():
        return [f"{migrations}: no migrations directory"]
    tree = tree_files(migrations)
    if not lock.is_file():
        return [f"{lock}: missing (write it with: nox -s lock)", *_numbering(tree, "migrations")]
    try:
        locked = read_lock(lock)
    except LockError as exc:
        return exc.lines
    out = _numbering(locked, f"{LOCK_NAME}")
    by_name = {f.name: f for f in tree}
    by_sha: dict[str, list[str]] = {}
    for f in tree:
        by_sha.setdefault(f.sha256, []).append(f.name)
    for entry in locked:
        current = by_name.get(entry.name)
        if current is None:
            moved = [n for n in by_sha.get(entry.sha256, []) if n != entry.name]
            if moved:
                out.append(f"migrations/{entry.name}: locked migration renumbered or renamed to {moved[0]}")
            else:
                out.append(f"migrations/{entry.name}: locked migration removed")
        elif current.sha256 != entry.sha256:
            out.append(
                f"migrations/{entry.name}: locked migration edited "
                f"(sha256 {current.sha256[:12]}, locked {entry.sha256[:12]})"
            )
    locked_names = {e.name for e in locked}
    head = max((e.version for e in locked), default=0)
    for f in tree:
        if f.name not in locked_names and f.version <= head:
            out.append(
                f"migrations/{f.name}: new file numbered {f.version}, at or below the locked head {head:04d}"
            )
    out.extend(_numbering(tree, "migrations"))
    return list(dict.fromkeys(out))


def check(project: Path) -> None:
    """Raise `LockError` when the tree breaks the lock. Called by the build before freezing."""
    found = problems(project)
    if found:
        raise LockError(found)


def render(files: list[LockedFile]) -> str:
    return _HEADER + "".join(f"{f.sha256}  {f.name}\n" for f in files)


def write(project: Path) -> list[LockedFile]:
    """Append the tree's new migrations to the lock (created when absent); return the added entries.

    Raises `LockError` when a locked line would have to change, or when numbering breaks.
    """
    migrations = project / "migrations"
    lock = migrations / LOCK_NAME
    locked = read_lock(lock) if lock.is_file() else []
    locked_names = {e.name for e in locked}
    tree = tree_files(migrations)
    found = [p for p in problems(project) if not p.endswith("(write it with: nox -s lock)")]
    # New files at or above the head are what we are here to add: only locked-line problems and
    # numbering problems stop us.
    if found:
        raise LockError(found)
    added = [f for f in tree if f.name not in locked_names]
    new_text = render(locked + added)
    if not lock.is_file() or lock.read_text(encoding="utf-8") != new_text:
        tmp = lock.with_suffix(".lock.tmp")
        tmp.write_text(new_text, encoding="utf-8")
        tmp.replace(lock)
    return added


def main(project: Path, argv: list[str] | None = None) -> int:
    """``nox -s lock`` (write) and ``nox -s lock -- --check``."""
    parser = argparse.ArgumentParser(prog="owrelease.lock")
    parser.add_argument("--check", action="store_true", help="only check the tree against the lock")
    parser.add_argument(
        "--reset", action="store_true", help="rewrite from scratch: only before the first release ships"
    )
    args = parser.parse_args(argv)
    if args.reset:
        (project / "migrations" / LOCK_NAME).unlink(missing_ok=True)
    try:
        if args.check:
            check(project)
            print(
                f"migrations.lock: {len(read_lock(project / 'migrations' / LOCK_NAME))} files locked, tree ok"
            )
            return 0
        added = write(project)
    except LockError as exc:
        for line in exc.lines:
            print(f"lock: {line}", file=sys.stderr)
        return 1
    total = len(read_lock(project / "migrations" / LOCK_NAME))
    print(f"migrations.lock: {len(added)} added, {total} locked")
    for f in added:
        print(f"  + {f.sha256[:12]}  {f.name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(Path.cwd(), sys.argv[1:]))
