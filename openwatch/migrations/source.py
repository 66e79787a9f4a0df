"""The migration set: goose SQL files with their versions, names and sha256.

The same code serves the embedded set (frozen: ``sys._MEIPASS/migrations``; from source: the repo's
``migrations/`` next to the package) and a ``--dir``. Discovery follows the goose CLI's collection:
top-level ``*.sql`` only, every one must carry a numeric version before its first ``_`` (a stray
``schema.sql`` is an error, not silently skipped), duplicate versions are fatal naming both files, and
an empty set is an error. On top of goose, names must match ``^\\d+_[^/]+\\.sql$``. Other files (such
as ``migrations.lock``) are not migrations and are ignored.

Importing this module is cheap (no database driver): ``migrate list`` uses it. ``--version`` needs only the
names, and takes them from ``discover`` (no hashlib, pathlib or dataclasses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

# the names-only rules live in discover (cheap to import); re-exported here for every caller
from openwatch.migrations import discover
from openwatch.migrations.discover import SourceError, parse_version, scan

__all__ = [
    "MigrationFile",
    "MigrationSet",
    "SourceError",
    "embedded",
    "embedded_dir",
    "from_dir",
    "parse_version",
]


@dataclass(frozen=True)
class MigrationFile:
    version: int
    name: str  # basename, e.g. 0001_initial.sql
    path: Path
    sha256: str  # hex digest of the file's bytes

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def read_text(self) -> str:
        try:
            return self.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{self.name}: not UTF-8 text (byte {exc.start})") from None


@dataclass(frozen=True)
class MigrationSet:
    directory: Path
    files: tuple[MigrationFile, ...]  # ascending version

    @property
    def head(self) -> int:
        return self.files[-1].version if self.files else 0

    def by_version(self) -> dict[int, MigrationFile]:
        return {f.version: f for f in self.files}


def from_dir(directory: str | Path) -> MigrationSet:
    path = Path(directory)
    files = []
    for version, name in scan(str(path)):
        entry = path / name
        files.append(MigrationFile(version, name, entry, hashlib.sha256(entry.read_bytes()).hexdigest()))
    return MigrationSet(path, tuple(files))


def embedded_dir() -> Path:
    """Where the embedded migrations live: inside the frozen bundle, or the source tree."""
    return Path(discover.embedded_dir())


def embedded() -> MigrationSet:
    from openwatch import ondemand

    ondemand.ensure(discover.EMBEDDED_PREFIX)  # frozen: unpacked on first use (openwatch.ondemand)
    return from_dir(embedded_dir())
