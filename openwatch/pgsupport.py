"""Which PostgreSQL servers OpenWatch runs on: the preflight of ``migrate`` and ``serve``.

The thresholds are what the compatibility matrix (tests/pgmatrix, PostgreSQL 13/15/17/18 from Debian
bullseye/bookworm/trixie/sid) proves, not a guess:

* ``MINIMUM`` 13: the oldest major the matrix runs the 46 migrations on. Every table's primary key
  defaults to ``gen_random_uuid()``, built into the server only since 13 (on 12 the first CREATE TABLE
  fails and leaves a half-applied schema), so anything older is refused before anything runs.
* ``RECOMMENDED`` 15: the oldest major of the matrix still supported upstream; older ones get a warning.
* ``EOL``: the PostgreSQL project's end-of-life dates (its versioning policy: five years per major). A
  server past its date gets a warning, whatever the thresholds say.
* A major newer than every tested one gets a warning too: nothing proves it yet.

Pure (no driver import): the callers pass ``server_version_num`` (``conn.info.server_version``).
"""

from __future__ import annotations

import datetime as dt

MINIMUM = 13
RECOMMENDED = 15
TESTED = (13, 15, 17, 18)
EOL: dict[int, dt.date] = {
    12: dt.date(2024, 11, 21),
    13: dt.date(2025, 11, 13),
    14: dt.date(2026, 11, 12),
    15: dt.date(2027, 11, 11),
    16: dt.date(2028, 11, 9),
    17: dt.date(2029, 11, 8),
    18: dt.date(2030, 11, 14),
}


def major_of(server_version_num: int) -> int:
    return server_version_num // 10000


def version_text(server_version_num: int) -> str:
    """150018 -> "15.18" (the numbering of PostgreSQL 10 and later)."""
    return f"{server_version_num // 10000}.{server_version_num % 10000}"


class TooOld(Exception):
    """The server is older than the schema runs on; ``str()`` is the one line to print."""


def check(server_version_num: int, today: dt.date | None = None) -> str | None:
    """Raise TooOld for a server below MINIMUM; return one warning line, or None when all is well."""
    major = major_of(server_version_num)
    shown = version_text(server_version_num)
    if major < MINIMUM:
        raise TooOld(
            f"PostgreSQL {shown} is too old: OpenWatch needs PostgreSQL {MINIMUM} or newer "
            f"(gen_random_uuid() built in); upgrade the server"
        )
    when = today or dt.datetime.now(dt.UTC).date()
    eol = EOL.get(major)
    if eol is not None and when > eol:
        return (
            f"PostgreSQL {shown} is past its end of life ({eol.isoformat()}): upgrade the server to "
            f"PostgreSQL {RECOMMENDED} or newer"
        )
    if major < RECOMMENDED:
        return f"PostgreSQL {shown} is below the recommended PostgreSQL {RECOMMENDED}: upgrade the server"
    if major > TESTED[-1]:
        return (
            f"PostgreSQL {shown} is newer than every version OpenWatch is tested on "
            f"({', '.join(map(str, TESTED))})"
        )
    return None
