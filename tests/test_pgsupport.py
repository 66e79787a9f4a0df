"""The preflight's decisions (openwatch.pgsupport), exactly as migrate and serve print them.

The real servers are in tests/test_pgmatrix.py (13, 15, 17, 18, each warning or not as decided here);
the refusal of a real pre-13 server (11.13) is in tests/test_pg_too_old.py; here, the decision itself.
"""

from __future__ import annotations

import datetime as dt

import pytest

from openwatch import pgsupport

DAY = dt.date(2026, 12, 1)
UPGRADE = "upgrade the server to PostgreSQL 15 or newer"


def test_older_than_13_is_refused_naming_both_versions() -> None:
    with pytest.raises(pgsupport.TooOld) as exc:
        pgsupport.check(120022, DAY)
    assert str(exc.value) == (
        "PostgreSQL 12.22 is too old: OpenWatch needs PostgreSQL 13 or newer (gen_random_uuid() built in); "
        "upgrade the server"
    )


@pytest.mark.parametrize(
    ("num", "line"),
    [
        (
            130022,
            f"PostgreSQL 13.22 is past its end of life (2025-11-13): {UPGRADE}",
        ),
        (
            140019,
            f"PostgreSQL 14.19 is past its end of life (2026-11-12): {UPGRADE}",
        ),
        (150018, None),
        (170007, None),
        (180001, None),
        (190000, "PostgreSQL 19.0 is newer than every version OpenWatch is tested on (13, 15, 17, 18)"),
    ],
)
def test_warnings(num: int, line: str | None) -> None:
    assert pgsupport.check(num, DAY) == line


def test_below_recommended_warns_even_before_its_end_of_life() -> None:
    assert pgsupport.check(140000, dt.date(2026, 1, 1)) == (
        "PostgreSQL 14.0 is below the recommended PostgreSQL 15: upgrade the server"
    )


def test_15_warns_once_past_its_end_of_life() -> None:
    assert pgsupport.check(150018, dt.date(2027, 11, 12)) is not None
