"""Generated migration files: the parser only ever raises ParseError, and what it accepts obeys
goose's rules as checked by a small independent model (written from goose-compat.md §1, not
from the parser's code)."""

from __future__ import annotations

import re
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openwatch.migrations.sqlparse import ParsedSQL, ParseError, parse

# --- the model ------------------------------------------------------------------------------

# Every whitespace character the generator can produce, and a few it cannot (Go's White_Space).
SPACE = " \t\r\n\v\f\u0085\u00a0\u2000\u3000"
WORDS = re.compile(f"[^{SPACE}]+")


def model_trim(s: str) -> str:
    return s.strip(SPACE)


def model_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def model_is_annotation(line: str) -> bool:
    return model_trim(line).startswith("--") and "+goose" in line


def model_command(line: str) -> str:
    return model_trim(line.replace("--", "").replace("+goose", "", 1)).lower()


def model_terminates(line: str) -> bool:
    last = ""
    for word in WORDS.findall(line):
        if word.startswith("--"):
            break
        last = word
    return last.endswith(";")


def model_layout(lines: list[str]) -> tuple[list[str], list[int]]:
    """For each line: its section ("", "up", "down") and its block number (-1 outside blocks)."""
    section, block, blocks = "", -1, 0
    sections: list[str] = []
    block_of: list[int] = []
    for line in lines:
        if model_is_annotation(line):
            cmd = model_command(line)
            if cmd in ("up", "down"):
                section = cmd
            elif cmd == "statementbegin":
                block, blocks = blocks, blocks + 1
            elif cmd == "statementend":
                block = -1
        sections.append(section)
        block_of.append(block)
    return sections, block_of


def check_model(text: str, direction: Literal["up", "down"], result: ParsedSQL) -> None:
    lines = model_lines(text)
    sections, block_of = model_layout(lines)
    annotations = [model_is_annotation(line) for line in lines]

    # use_tx is false exactly when a NO TRANSACTION line exists (anywhere, any direction).
    no_tx = any(
        a and model_command(line) == "no transaction" for a, line in zip(annotations, lines, strict=True)
    )
    assert result.use_tx is not no_tx

    # Statements are trimmed and never contain an annotation line.
    for stmt in result.statements:
        assert stmt == model_trim(stmt)
        assert not any(model_is_annotation(part) for part in stmt.split("\n"))

    # Each non-empty statement is a contiguous run of this direction's lines (annotation lines
    # left out), in file order; plain statements end on a terminating line, and no line before
    # the last one outside a block terminates.
    position = 0
    block_statements: list[set[int]] = []
    for stmt in result.statements:
        if stmt == "":
            continue  # the empty-block quirk (§1.6 #1) or a whitespace-only block
        window = find_window(lines, annotations, sections, direction, stmt, position)
        assert window is not None, f"statement {stmt!r} is not a run of {direction} lines"
        first, last = window
        position = last + 1
        body = [i for i in range(first, last + 1) if not annotations[i]]
        if block_of[last] < 0:
            assert model_terminates(lines[last]) or closed_by_block_end(lines, annotations, last)
        else:
            blocks_in = {block_of[i] for i in body if block_of[i] >= 0}
            assert len(blocks_in) == 1, "a block statement spans exactly one block"
            block_statements.append(blocks_in)
        assert not any(block_of[i] < 0 and model_terminates(lines[i]) for i in body[:-1])

    # A block never gives two statements, and every block of this direction holding real SQL
    # gives one (a block of only blanks and comments may give "" or nothing: §1.6 #1).
    def real_sql(i: int) -> bool:
        trimmed = model_trim(lines[i])
        return trimmed != "" and not trimmed.startswith("--")

    wanted = {
        block_of[i]
        for i in range(len(lines))
        if block_of[i] >= 0 and sections[i] == direction and not annotations[i] and real_sql(i)
    }
    got = [b for s in block_statements for b in s]
    assert len(got) == len(set(got))
    assert wanted <= set(got)


def closed_by_block_end(lines: list[str], annotations: list[bool], last: int) -> bool:
    """An unterminated plain statement followed by an (empty) block is emitted at its end (§1.6 #3)."""
    for i in range(last + 1, len(lines)):
        if annotations[i] and model_command(lines[i]) == "statementend":
            return True
        if not annotations[i] and model_trim(lines[i]) != "":
            return False
    return False


def find_window(
    lines: list[str],
    annotations: list[bool],
    sections: list[str],
    direction: str,
    stmt: str,
    start: int,
) -> tuple[int, int] | None:
    for first in range(start, len(lines)):
        if annotations[first] or sections[first] != direction:
            continue
        parts: list[str] = []
        for last in range(first, len(lines)):
            if sections[last] != direction:
                break
            if annotations[last]:
                continue
            parts.append(lines[last])
            joined = model_trim("\n".join(parts))
            if joined == stmt:
                return first, last
            if len(joined) > len(stmt):
                break
    return None


# --- the grammar ----------------------------------------------------------------------------

ANNOTATIONS = [
    "-- +goose Up",
    "-- +goose up",
    "--+goose UP",
    "-- +goose Down",
    "-- +goose DOWN",
    "-- +goose StatementBegin",
    "-- +goose statementbegin",
    "-- +goose StatementEnd",
    "---- +goose StatementEnd",
    "-- +goose NO TRANSACTION",
    "-- +goose no transaction",
]
BAD_ANNOTATIONS = ["  -- +goose Up", "-- +goose", "-- +goose Up -- c", "-- see +goose", "-- +goose +goose Up"]
NOISE = ["", "   ", "\t", "\u00a0", "-- comment", "  -- indented comment", "-- c;", "--"]
SQL = [
    "SELECT 1",
    "SELECT 1;",
    "SELECT 1; -- c",
    "SELECT 1 -- c ;",
    "  , 2",
    "END;",
    "END ;",
    ";",
    "x;y",
    "CREATE FUNCTION f() RETURNS int AS $$",
    "$$ LANGUAGE sql;",
    "  RETURN 1;",
    "INSERT INTO t VALUES ('a;",
    "b');",
    "/* c1;",
    " c2 */",
    "VALUES ('x -- y');",
    "\u00a0SELECT 3;\u00a0",
    "SELECT '$1', $A, ${B:-x};",
    'SELECT " ; " -- c',
]
BLOCK_BODY = ["BLOCKBODY 1;", "BLOCKBODY $$", "  BLOCKBODY -- c", "BLOCKBODY"]

plain_line = st.one_of(st.sampled_from(SQL), st.sampled_from(NOISE))
block = st.lists(st.one_of(st.sampled_from(BLOCK_BODY), st.sampled_from(NOISE)), max_size=5).map(
    lambda body: ["-- +goose StatementBegin", *body, "-- +goose StatementEnd"]
)
item = st.one_of(
    plain_line.map(lambda line: [line]),
    block,
    st.sampled_from(["SELECT 1;", "END; -- c", "  x ;"]).map(lambda line: [line]),
    st.integers(0, 4)
    .flatmap(lambda n: st.sampled_from(ANNOTATIONS if n == 0 else ["-- +goose NO TRANSACTION"]))
    .map(lambda line: [line]),
)
# A section usually ends with a terminated statement, so that most files parse.
section = st.tuples(st.lists(item, max_size=8), st.sampled_from([[], ["SELECT 0;"], ["SELECT 0;"]])).map(
    lambda parts: [line for it in parts[0] for line in it] + parts[1]
)


@st.composite
def migration(draw: st.DrawFn) -> str:
    lines: list[str] = draw(st.lists(st.sampled_from(NOISE), max_size=3))
    if draw(st.booleans()):
        lines.append("-- +goose NO TRANSACTION")
    if draw(st.integers(0, 9)):
        lines.append(draw(st.sampled_from(["-- +goose Up", "-- +goose UP", "--+goose up"])))
    lines += draw(section)
    if draw(st.booleans()):
        lines.append("-- +goose Down")
        lines += draw(section)
    if draw(st.integers(0, 9)) == 0:
        where = draw(st.integers(0, len(lines)))
        lines.insert(where, draw(st.sampled_from(BAD_ANNOTATIONS)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines)
    if draw(st.booleans()) and lines:
        text += newline
    return text


SETTINGS = settings(
    derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(migration(), st.sampled_from(["up", "down"]))
def test_accepted_files_obey_the_rules(text: str, direction: Literal["up", "down"]) -> None:
    try:
        result = parse(text, direction, filename="gen.sql", environ={})
    except ParseError as err:
        assert err.filename == "gen.sql"
        assert 1 <= err.line <= max(1, len(model_lines(text)))
        assert str(err).startswith(f"gen.sql:{err.line}: ")
        return
    check_model(text, direction, result)


@SETTINGS
@given(migration())
def test_crlf_and_lf_parse_alike(text: str) -> None:
    lf = text.replace("\r\n", "\n")
    crlf = lf.replace("\n", "\r\n")
    for direction in ("up", "down"):
        outcomes: list[object] = []
        for variant in (lf, crlf):
            try:
                outcomes.append(parse(variant, direction, environ={}))
            except ParseError as err:
                outcomes.append((err.line, err.goose_message))
        assert outcomes[0] == outcomes[1]


@SETTINGS
@given(migration(), st.sampled_from([{}, {"A": "a", "B": ""}, {"A": ";", "B": "-- x"}]))
def test_envsub_never_raises_anything_else(text: str, env: dict[str, str]) -> None:
    text = "-- +goose ENVSUB ON\n" + text
    for direction in ("up", "down"):
        try:
            up = parse(text, direction, environ=env)
        except ParseError as err:
            assert err.goose_message
            continue
        assert all(stmt == model_trim(stmt) for stmt in up.statements)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("-+goseUpDwnStamiBgEdNOTRA $;{}'\\\r\n\t\u00a0")), max_size=80))
def test_arbitrary_text_only_raises_parse_error(text: str) -> None:
    for direction in ("up", "down"):
        for env in ({}, {"A": "1"}):
            try:
                parse("-- +goose ENVSUB ON\n" + text, direction, environ=env)
                parse(text, direction, environ=env)
            except ParseError:
                pass
