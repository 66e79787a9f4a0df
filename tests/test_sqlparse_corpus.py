"""Our parser against goose's real parser output on goose's own corpus (expected_parse.json).

Every corpus file is parsed in both directions with exactly the environment goose ran with; the
statements must match byte for byte, use_tx must match, and errors must carry goose's exact text.
The corpus lives outside the project (../shared/goose-corpus, or $OPENWATCH_GOOSE_CORPUS); when it
is absent the whole module is skipped, saying where it looked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import pytest

from openwatch.migrations.sqlparse import ParseError, decode, parse

CORPUS = Path(
    os.environ.get("OPENWATCH_GOOSE_CORPUS") or Path(__file__).parents[1].parent / "shared" / "goose-corpus"
)
EXPECTED = CORPUS / "expected_parse.json"
# The environment goose's parser ran with when expected_parse.json was produced (and nothing else).
GOOSE_ENV = {"GOOSE_ENV_REGION": "us_east_", "GOOSE_ENV_SET_BUT_EMPTY_VALUE": "", "GOOSE_ENV_NAME": "foo"}


def _load() -> dict[str, dict[str, dict[str, Any]]]:
    if not EXPECTED.is_file():
        return {}
    results: dict[str, dict[str, dict[str, Any]]] = json.loads(EXPECTED.read_text(encoding="utf-8"))[
        "results"
    ]
    return results


RESULTS = _load()
CASES = [(name, direction) for name in sorted(RESULTS) for direction in sorted(RESULTS[name])]
_checked: set[tuple[str, str]] = set()

pytestmark = pytest.mark.skipif(
    not RESULTS, reason=f"goose corpus not found: looked for {EXPECTED} (set OPENWATCH_GOOSE_CORPUS)"
)


def _ours(name: str, direction: Literal["up", "down"]) -> dict[str, Any]:
    path = CORPUS / name
    text = decode(path.read_bytes(), name)
    try:
        result = parse(text, direction, filename=name, environ=GOOSE_ENV)
    except ParseError as err:
        assert err.filename == name
        assert str(err) == f"{name}:{err.line}: {err.goose_message}"
        return {"error": err.goose_message}
    return {"statements": result.statements, "use_tx": result.use_tx}


@pytest.mark.parametrize(("name", "direction"), CASES, ids=[f"{n}:{d}" for n, d in CASES])
def test_matches_goose(name: str, direction: Literal["up", "down"]) -> None:
    expected = RESULTS[name][direction]
    assert _ours(name, direction) == expected
    _checked.add((name, direction))


def test_every_entry_was_checked() -> None:
    # Runs last (definition order). Entries not run in this session (-k, a single node id) are
    # checked here, so this test alone proves that every file, both directions, matches goose.
    for name, direction in CASES:
        if (name, direction) not in _checked:
            test_matches_goose(name, direction)  # type: ignore[arg-type]
    assert all(set(v) == {"up", "down"} for v in RESULTS.values())
    assert len(CASES) == 2 * len(RESULTS)
    assert _checked == set(CASES), f"{len(_checked)}/{len(CASES)} corpus entries matched goose"
