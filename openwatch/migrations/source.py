"""The migration set: goose SQL files with their versions, names and sha256.

The same code serves the embedded set and a ``--dir``. The embedded set is package data, read with
importlib.resources as ``openwatch.migrations/sql``: in a source checkout that is a committed symlink to
the top-level ``migrations/`` (the one place migrations are written); a wheel carries the files
themselves (``[tool.setuptools.package-data]``). The frozen bundle keeps them at ``sys._MEIPASS/migrations``,
where ``owrelease.verify`` reads them back out of the archive. Discovery follows the goose CLI's collection:
top-level ``*.sql`` only, every one must carry a numeric version before its first ``_`` (a stray
``schema.sql`` is an error, not silently skipped), duplicate versions are fatal naming both files, and
an empty set is an error. On top of goose, names must match ``^\\d+_[^/]+\\.sql$``. Other files (such
as ``migrations.lock``) are not migrations and are ignored.

Importing this module is cheap (no database driver): ``migrate list`` and ``--version`` use it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import sys
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^\d+_[^/]+\.sql\Z")
_MAX_VERSION = 2**63 - 1


class SourceError(Exception):
    """The migration directory cannot be used; the message is one line."""


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


def parse_version(name: str) -> int:
    """goose's NumericComponent for a basename; raises SourceError with goose's reason."""
    if not name.endswith(".sql"):
        raise SourceError(f"{name}: not a .sql file")
    if "_" not in name:
        raise SourceError(f"{name}: no filename separator '_' found")
    head = name.split("_", 1)[0]
    if not re.fullmatch(r"[+-]?\d+", head):
        raise SourceError(f'{name}: failed to parse version from migration file: strconv.ParseInt: "{head}"')
    value = int(head)
    if value > _MAX_VERSION or value < -(2**63):
        raise SourceError(f"{name}: version {head} is out of range")
    if value < 1:
        raise SourceError(f"{name}: migration version must be greater than zero")
    if not _NAME.match(name):
        raise SourceError(f"{name}: migration names must look like NNNN_description.sql")
    return value


def from_dir(directory: str | Path) -> MigrationSet:
    path = Path(directory)
    if not path.is_dir():
        raise SourceError(f"{path} directory does not exist")
    seen: dict[int, MigrationFile] = {}
    for entry in sorted(path.glob("*.sql")):
        if not entry.is_file():
            continue
        try:
            version = parse_version(entry.name)
        except SourceError as exc:
            raise SourceError(f'could not parse SQL migration file "{entry}": {exc}') from None
        data = entry.read_bytes()
        mf = MigrationFile(version, entry.name, entry, hashlib.sha256(data).hexdigest())
        if version in seen:
            raise SourceError(f"duplicate version {version} detected: {seen[version].name} and {entry.name}")
        seen[version] = mf
    if not seen:
        raise SourceError(f"no migration files found in {path}")
    return MigrationSet(path, tuple(seen[v] for v in sorted(seen)))


def embedded_dir() -> Path:
    """Where the embedded migrations live: inside the frozen bundle, else this package's ``sql`` data."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "migrations"
    data = importlib.resources.files(__package__).joinpath("sql")
    if not isinstance(data, Path):  # e.g. a zip import: from_dir needs real files
        raise SourceError(f"{data}: package data is not on a file system")
    return data


def embedded() -> MigrationSet:
    return from_dir(embedded_dir())
