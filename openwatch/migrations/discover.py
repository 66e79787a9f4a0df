"""Which files of a directory are migrations, and their versions: from the names alone.

No file is read and nothing is hashed, and this module imports only ``os`` and ``sys`` (not even ``re``:
the two patterns are spelled with str methods), so ``--version`` can name the embedded schema without
paying for ``hashlib`` (libcrypto), ``pathlib``, ``dataclasses`` or the regex engine.
``openwatch.migrations.source`` builds the full set (contents, sha256) on top of it; the rules and
error texts are goose's and live here once.
"""

from __future__ import annotations

import os
import sys

_MAX_VERSION = 2**63 - 1
EMBEDDED_PREFIX = "migrations/"  # the frozen bundle's member names of the embedded migrations


def _is_int(text: str) -> bool:
    """``re.fullmatch(r"[+-]?\\d+", text)``: ``\\d`` is any Unicode decimal digit, as ``str.isdecimal``."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return digits.isdecimal()


def _well_named(name: str) -> bool:
    """``re.match(r"^\\d+_[^/]+\\.sql\\Z", name)``: digits, ``_``, a description without ``/``, ``.sql``."""
    i = 0
    while i < len(name) and name[i].isdecimal():
        i += 1
    rest = name[i + 1 :]
    return i > 0 and name[i : i + 1] == "_" and rest.endswith(".sql") and len(rest) > 4 and "/" not in rest


class SourceError(Exception):
    """The migration directory cannot be used; the message is one line."""


def parse_version(name: str) -> int:
    """goose's NumericComponent for a basename; raises SourceError with goose's reason."""
    if not name.endswith(".sql"):
        raise SourceError(f"{name}: not a .sql file")
    if "_" not in name:
        raise SourceError(f"{name}: no filename separator '_' found")
    head = name.split("_", 1)[0]
    if not _is_int(head):
        raise SourceError(f'{name}: failed to parse version from migration file: strconv.ParseInt: "{head}"')
    value = int(head)
    if value > _MAX_VERSION or value < -(2**63):
        raise SourceError(f"{name}: version {head} is out of range")
    if value < 1:
        raise SourceError(f"{name}: migration version must be greater than zero")
    if not _well_named(name):
        raise SourceError(f"{name}: migration names must look like NNNN_description.sql")
    return value


def scan(directory: str) -> list[tuple[int, str]]:
    """(version, file name) of every migration in ``directory``, ascending; raises SourceError.

    goose's collection: top-level ``*.sql`` files only (a symlink to a file counts), each must carry a
    version, duplicates are fatal naming both, an empty set is an error. ``directory`` is used as given in
    the messages (``source.from_dir`` passes it normalised).
    """
    if not os.path.isdir(directory):
        raise SourceError(f"{directory} directory does not exist")
    with os.scandir(directory) as entries:
        return _versions(directory, [e.name for e in entries if e.name.endswith(".sql") and e.is_file()])


def scan_embedded() -> list[tuple[int, str]]:
    """:func:`scan` of :func:`embedded_dir`; frozen, from the names the archive holds, nothing unpacked."""
    from openwatch import ondemand

    names = [n for n in ondemand.names(EMBEDDED_PREFIX) if "/" not in n and n.endswith(".sql")]
    return _versions(embedded_dir(), names) if names else scan(embedded_dir())


def _versions(directory: str, names: list[str]) -> list[tuple[int, str]]:
    seen: dict[int, str] = {}
    for name in sorted(names):
        try:
            version = parse_version(name)
        except SourceError as exc:
            where = os.path.join(directory, name)
            raise SourceError(f'could not parse SQL migration file "{where}": {exc}') from None
        if version in seen:
            raise SourceError(f"duplicate version {version} detected: {seen[version]} and {name}")
        seen[version] = name
    if not seen:
        raise SourceError(f"no migration files found in {directory}")
    return sorted(seen.items())


def embedded_dir() -> str:
    """Where the embedded migrations live: inside the frozen bundle, else this package's ``sql`` data.

    ``openwatch/migrations/sql`` is the package data that ``importlib.resources`` would name: in a source
    checkout a committed symlink to the repository's ``migrations/`` (the one place they are written), in
    an installed wheel the files themselves.  Spelled with ``os.path`` so ``--version`` stays cheap.
    """
    if getattr(sys, "frozen", False):
        return os.path.join(getattr(sys, "_MEIPASS", os.path.dirname(sys.executable)), "migrations")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")
