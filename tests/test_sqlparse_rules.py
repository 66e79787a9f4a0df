"""Every rule of goose's SQL parser (goose-compat.md §1.1-1.9), one case or more each.

Expected values are derived from the reference text, not from running our parser.
"""

from __future__ import annotations

from typing import Literal

import pytest

from openwatch.migrations.sqlparse import (
    MAX_LINE_BYTES,
    ParsedSQL,
    ParseError,
    decode,
    ends_with_semicolon,
    go_quote,
    go_trim_space,
    parse,
)

SEE = "see https://github.com/pressly/goose#sql-migrations"
UP = "-- +goose Up\n"
DOWN = "-- +goose Down\n"
BEGIN = "-- +goose StatementBegin\n"
END = "-- +goose StatementEnd\n"
NOENV: dict[str, str] = {}


def up(text: str, env: dict[str, str] | None = None) -> list[str]:
    return parse(text, "up", environ=NOENV if env is None else env).statements


def down(text: str, env: dict[str, str] | None = None) -> list[str]:
    return parse(text, "down", environ=NOENV if env is None else env).statements


def error(
    text: str, direction: Literal["up", "down"] = "up", env: dict[str, str] | None = None
) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(text, direction, filename="m.sql", environ=NOENV if env is None else env)
    err = info.value
    assert str(err) == f"m.sql:{err.line}: {err.goose_message}"
    assert err.filename == "m.sql"
    return err


def unfinished(state: int, direction: str, quoted: str) -> str:
    return (
        f"failed to parse migration: state {state}, direction: {direction}: "
        f"unexpected unfinished SQL query: {quoted}: missing semicolon?"
    )


def annotation_error(line: str, detail: str) -> str:
    return f"failed to parse annotation line {go_quote(line)}: {detail}"


# --- §1.1 reading the file ------------------------------------------------------------------


def test_crlf_behaves_like_lf() -> None:
    lf = (
        UP
        + BEGIN
        + "SELECT 1;\nSELECT 2;\n"
        + END
        + "INSERT INTO t\nVALUES (1);\n"
        + DOWN
        + "DROP TABLE t;\n"
    )
    crlf = lf.replace("\n", "\r\n")
    for direction in ("up", "down"):
        assert parse(crlf, direction) == parse(lf, direction)
    assert up(crlf) == ["SELECT 1;\nSELECT 2;", "INSERT INTO t\nVALUES (1);"]
    assert down(crlf) == ["DROP TABLE t;"]


def test_only_one_trailing_cr_is_removed() -> None:
    assert up(UP + "SELECT 'a\r\r\nb';\r\n") == ["SELECT 'a\r\nb';"]


def test_last_line_without_newline_is_processed() -> None:
    assert up(UP + "SELECT 1;") == ["SELECT 1;"]
    assert up(UP + "SELECT 1;\r") == ["SELECT 1;"]
    assert up("-- +goose Up") == []
    err = error(UP + "SELECT 1")
    assert err.line == 2


def test_line_length_limit_is_4_mib_of_bytes() -> None:
    assert MAX_LINE_BYTES == 4 * 1024 * 1024
    longest = "SELECT '" + "x" * (MAX_LINE_BYTES - 11) + "';"
    assert len(longest.encode()) == MAX_LINE_BYTES - 1
    assert up(UP + longest + "\n") == [longest]
    assert up(UP + longest) == [longest]
    message = "failed to scan migration: bufio.Scanner: token too long"
    too_long = "x" * MAX_LINE_BYTES
    err = error(UP + "SELECT 1;\n" + too_long + "\n")
    assert (err.goose_message, err.line) == (message, 3)
    assert error(UP + too_long).goose_message == message
    # The carriage return of a CRLF line is part of the scanned token.
    assert error(UP + "x" * (MAX_LINE_BYTES - 1) + "\r\n").goose_message == message
    # Bytes, not characters: 2 Mi two-byte characters are 4 MiB.
    assert error(UP + "é" * (MAX_LINE_BYTES // 2) + "\n").goose_message == message
    # Earlier lines are handled first: their error wins.
    assert error(UP + UP + too_long).goose_message.startswith("duplicate '-- +goose Up'")


def test_statements_are_trimmed_with_unicode_whitespace() -> None:
    assert up(UP + "\u00a0SELECT 1;\u3000\n") == ["SELECT 1;"]
    assert up(UP + "SELECT 1;\u0085\n") == ["SELECT 1;"]
    assert go_trim_space("\u2028 x \u205f\u202f\t") == "x"
    # Python's isspace also accepts U+001C..U+001F; Go's does not.
    assert go_trim_space("\x1cx\x1f") == "\x1cx\x1f"
    err = error(UP + "SELECT 1;\x1c\n")
    assert err.goose_message == unfinished(1, "up", '"SELECT 1;\\x1c"')


def test_lines_are_joined_with_newline_and_keep_inner_text() -> None:
    text = UP + "CREATE TABLE t (\n\n    -- inner comment\n    id int\n);\n"
    assert up(text) == ["CREATE TABLE t (\n\n    -- inner comment\n    id int\n);"]


# --- §1.2 annotations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["-- +goose Up", "-- +goose UP", "-- +goose up", "--+goose Up", "---- +goose Up", "-- +goose   UP \t"],
)
def test_up_annotation_spellings(line: str) -> None:
    assert up(line + "\nSELECT 1;\n") == ["SELECT 1;"]


def test_other_annotations_are_case_insensitive() -> None:
    text = (
        "-- +goose up\n-- +goose statementbegin\nSELECT 1;\nSELECT 2;\n-- +goose STATEMENTEND\n"
        "-- +goose no transaction\n-- +goose DOWN\n-- +goose Envsub On\nSELECT $X;\n-- +goose envsub off\n"
        "SELECT $X;\n"
    )
    assert parse(text, "up") == ParsedSQL(["SELECT 1;\nSELECT 2;"], False)
    assert down(text, {"X": "7"}) == ["SELECT 7;", "SELECT $X;"]


def test_equal_fold_matches_long_s() -> None:
    # Go's EqualFold uses simple case folding: U+017F LONG S folds to "s".
    assert up(UP + "-- +goose \u017ftatementBegin\nSELECT 1;\nSELECT 2;\n" + END) == ["SELECT 1;\nSELECT 2;"]


def test_uppercase_goose_marker_is_an_ordinary_comment() -> None:
    assert up(UP + "-- +GOOSE Down\nSELECT 1;\n") == ["SELECT 1;"]
    assert error("-- +GOOSE Up\nSELECT 1;\n").goose_message.startswith(
        "failed to parse migration: unexpected state 0"
    )


def test_leading_whitespace_before_annotation_is_an_error() -> None:
    for line in ("  -- +goose Up", "\t-- +goose Up"):
        err = error(line + "\nSELECT 1;\n")
        detail = f"{go_quote(line)} contains leading whitespace: invalid annotation"
        assert (err.goose_message, err.line) == (annotation_error(line, detail), 1)
    # Indented StatementEnd inside a block: an error, not a comment.
    line = "  -- +goose StatementEnd"
    err = error(UP + BEGIN + "SELECT 1;\n" + line + "\n")
    assert (err.goose_message, err.line) == (
        annotation_error(line, f"{go_quote(line)} contains leading whitespace: invalid annotation"),
        4,
    )


def test_non_breaking_space_indent_is_not_leading_whitespace() -> None:
    # Only " " and "\t" are refused; NBSP is trimmed away with the rest of the command.
    assert up("\u00a0-- +goose Up\nSELECT 1;\n") == ["SELECT 1;"]


def test_multiple_goose_markers() -> None:
    line = "-- +goose +goose Up"
    detail = "\"  +goose Up\" contains multiple '+goose' annotations: invalid annotation"
    assert error(line + "\n").goose_message == annotation_error(line, detail)


@pytest.mark.parametrize("line", ["-- +goose", "-- +goose   ", "-- +goose --", "--+goose\t"])
def test_empty_annotation(line: str) -> None:
    assert error(UP + line + "\n").goose_message == annotation_error(line, "empty annotation")


@pytest.mark.parametrize(
    ("line", "cmd"),
    [
        ("-- +goose unsupported", "unsupported"),
        ("-- +goose Up -- comment", "Up  comment"),
        ("-- see +goose docs", "see  docs"),
        ("-- +goose NO  TRANSACTION", "NO  TRANSACTION"),
        ("-- +goose NO\tTRANSACTION", "NO\tTRANSACTION"),
        ("-- +goose ENVSUBST ON", "ENVSUBST ON"),
        ("-- +goose StatementBegin;", "StatementBegin;"),
    ],
)
def test_unsupported_annotations(line: str, cmd: str) -> None:
    err = error(UP + line + "\n")
    assert (err.goose_message, err.line) == (
        annotation_error(line, f"{go_quote(cmd)} not supported: invalid annotation"),
        2,
    )


def test_comment_mentioning_goose_fails_even_inside_a_block_body() -> None:
    line = "  -- this is not a +goose annotation"
    text = (
        UP
        + BEGIN
        + "CREATE FUNCTION f() RETURNS int AS $$\n"
        + line
        + "\nSELECT 1;\n$$ LANGUAGE sql;\n"
        + END
    )
    err = error(text)
    assert err.line == 4
    assert err.goose_message == annotation_error(
        line, f"{go_quote(line)} contains leading whitespace: invalid annotation"
    )
    line = "-- this is not a +goose annotation"
    err = error(text.replace("  -- this", "-- this"))
    assert err.goose_message == annotation_error(
        line, '"this is not a  annotation" not supported: invalid annotation'
    )


def test_other_comments_are_not_annotations() -> None:
    assert up(UP + "-- goose Down\n-- StatementBegin\nSELECT 1;\n") == ["SELECT 1;"]


def test_annotation_lines_never_enter_statements() -> None:
    text = UP + "SELECT 1\n-- +goose NO TRANSACTION\n, 2\n-- +goose ENVSUB ON\n, 3;\n"
    assert parse(text, "up") == ParsedSQL(["SELECT 1\n, 2\n, 3;"], False)


# --- §1.3 the state machine -----------------------------------------------------------------


def test_blank_lines_before_up_are_skipped() -> None:
    assert up("\n   \n\t\n\u3000\n" + UP + "SELECT 1;\n") == ["SELECT 1;"]
    assert up("    \n-- a comment\n" + UP + "SELECT 1;\n") == ["SELECT 1;"]


def test_duplicate_up() -> None:
    cases = {
        UP + UP: (1, 2),
        UP + BEGIN + UP: (2, 3),
        UP + BEGIN + END + UP: (3, 4),  # an empty block leaves the state at StatementEnd (quirk 1)
        UP + DOWN + UP: (4, 3),
        UP + DOWN + BEGIN + UP: (5, 4),
        UP + DOWN + BEGIN + END + UP: (6, 5),
    }
    for text, (state, line) in cases.items():
        for direction in ("up", "down"):
            err = error(text, direction)
            expected = f"duplicate '-- +goose Up' annotations; stateMachine={state}, {SEE}"
            assert (err.goose_message, err.line) == (expected, line)


def test_down_allowed_only_after_up() -> None:
    cases = {
        DOWN: (0, 1),
        UP + DOWN + DOWN: (4, 3),
        UP + BEGIN + DOWN: (2, 3),
        UP + DOWN + BEGIN + DOWN: (5, 4),
        UP + DOWN + BEGIN + END + DOWN: (6, 5),
    }
    for text, (state, line) in cases.items():
        err = error(text + "SELECT 1;\n")
        expected = f"must start with '-- +goose Up' annotation, stateMachine={state}, {SEE}"
        assert (err.goose_message, err.line) == (expected, line)
    # From state 3 (empty block) Down is fine.
    assert parse(UP + BEGIN + END + DOWN, "down") == ParsedSQL([], True)


def test_down_with_unfinished_up_statement() -> None:
    text = UP + "SELECT 1;\nSELECT * FROM bar\n" + DOWN + "SELECT 2;\n"
    err = error(text)
    expected = unfinished(1, "up", '"SELECT * FROM bar"')
    assert (err.goose_message, err.line) == (expected, 4)
    assert down(text) == ["SELECT 2;"]


def test_statement_begin_placement() -> None:
    cases = {BEGIN: (0, 1), UP + BEGIN + BEGIN: (2, 3), UP + DOWN + BEGIN + BEGIN: (5, 4)}
    for text, (state, line) in cases.items():
        err = error(text)
        expected = (
            "'-- +goose StatementBegin' must be defined after '-- +goose Up' or '-- +goose Down' annotation, "
            f"stateMachine={state}, {SEE}"
        )
        assert (err.goose_message, err.line) == (expected, line)


def test_statement_end_placement() -> None:
    expected = f"'-- +goose StatementEnd' must be defined after '-- +goose StatementBegin', {SEE}"
    for text, line in {END: 1, UP + END: 2, UP + DOWN + END: 3, UP + BEGIN + END + END: 4}.items():
        err = error(text)
        assert (err.goose_message, err.line) == (expected, line)


def test_sql_before_up_is_an_error() -> None:
    err = error("CREATE TABLE x (id int);\n" + UP)
    expected = f'failed to parse migration: unexpected state 0 on line "CREATE TABLE x (id int);", {SEE}'
    assert (err.goose_message, err.line) == (expected, 1)
    # The line is quoted Go-style (%q) after ENVSUB expansion.
    err = error('-- +goose ENVSUB ON\nSELECT "$A"\t;\n' + UP, env={"A": "é\u00a0"})
    assert (
        err.goose_message
        == f'failed to parse migration: unexpected state 0 on line "SELECT \\"é\\u00a0\\"\\t;", {SEE}'
    )
    assert err.line == 2


@pytest.mark.parametrize("text", ["", "\n\n", "   \n", "-- just a comment\n", "-- +goose NO TRANSACTION\n"])
def test_eof_before_up(text: str) -> None:
    for direction in ("up", "down"):
        err = error(text, direction)
        assert (
            err.goose_message
            == f"failed to parse migration: must start with '-- +goose Up' annotation, {SEE}"
        )
        assert err.line == max(1, text.count("\n"))


def test_eof_inside_a_block() -> None:
    message = "failed to parse migration: missing '-- +goose StatementEnd' annotation"
    for text in (UP + BEGIN + "SELECT 1;\n", UP + DOWN + BEGIN + "SELECT 1;\n\n"):
        for direction in ("up", "down"):
            err = error(text, direction)
            assert (err.goose_message, err.line) == (message, text.count("\n"))


def test_eof_with_unfinished_statement() -> None:
    err = error(UP + "SELECT \"a\",\n  'b'\n\n")
    assert err.goose_message == (
        "failed to parse migration: state 1, direction: up: unexpected unfinished SQL query: "
        '"SELECT \\"a\\",\\n  \'b\'": missing semicolon?'
    )
    assert err.line == 4
    err = error(UP + DOWN + "DROP TABLE x", "down")
    assert err.goose_message == unfinished(4, "down", '"DROP TABLE x"')


def test_up_alone_is_a_valid_empty_migration() -> None:
    assert parse(UP, "up") == ParsedSQL([], True)
    assert parse(UP, "down") == ParsedSQL([], True)
    assert parse(UP + "-- only a comment", "up") == ParsedSQL([], True)


def test_each_direction_keeps_only_its_own_statements() -> None:
    text = UP + "SELECT 1;\nSELECT 2;\n" + DOWN + "SELECT 3;\n"
    assert up(text) == ["SELECT 1;", "SELECT 2;"]
    assert down(text) == ["SELECT 3;"]


# --- §1.4 statement splitting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("END;", True),
        ("END; -- comment", True),
        ("END   ; -- comment", True),
        ("END -- comment", False),
        ("END -- comment ;", False),
        ('END " ; " -- comment', False),
        ("", False),
        (";", True),
        ("  ;  ", True),
        ("SELECT 1;--c", False),
        ("SELECT 1; --c", True),
        ("SELECT 1;\t---", True),
        ("SELECT 'a--b';", True),
        ("VALUES ('x -- y');", False),
        ("--;", False),
        ("a;b", False),
        ("a;\u00a0", True),
        ("a;\u3000-- c", True),
        ("a;\x1c", False),
        ("SELECT 3; SELECT 3;", True),
    ],
)
def test_ends_with_semicolon(line: str, expected: bool) -> None:
    assert ends_with_semicolon(line) is expected


def test_splitting_examples() -> None:
    assert up(UP + "SELECT 2;           -- 2nd stmt\n") == ["SELECT 2;           -- 2nd stmt"]
    assert up(UP + "END ; -- c\n") == ["END ; -- c"]
    assert up(UP + "SELECT 3; SELECT 3;\n") == ["SELECT 3; SELECT 3;"]
    assert up(UP + "SELECT 1; SELECT\n2;\n") == ["SELECT 1; SELECT\n2;"]
    assert up(UP + "SELECT 1 -- c ;\n;\n") == ["SELECT 1 -- c ;\n;"]
    assert up(UP + "SELECT 'a;b', 1\n;\n") == ["SELECT 'a;b', 1\n;"]


def test_dollar_quoted_bodies_are_broken_apart_outside_blocks() -> None:
    text = UP + "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\n"
    assert up(text) == [
        "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;",
        "END;",
        "$$ LANGUAGE plpgsql;",
    ]
    err = error(UP + "CREATE FUNCTION f() RETURNS int AS $$\n  SELECT 1;\n$$ LANGUAGE sql\n")
    assert err.goose_message.endswith(
        'unexpected unfinished SQL query: "$$ LANGUAGE sql": missing semicolon?'
    )


def test_no_sql_syntax_is_understood() -> None:
    assert up(UP + "INSERT INTO t VALUES ('a;\nb');\n") == ["INSERT INTO t VALUES ('a;", "b');"]
    assert up(UP + "/* c1;\n c2 */\nSELECT 1;\n") == ["/* c1;", "c2 */\nSELECT 1;"]
    assert up(UP + "INSERT INTO t VALUES ('x -- y');\nSELECT 1;\n") == [
        "INSERT INTO t VALUES ('x -- y');\nSELECT 1;"
    ]


def test_comments_and_blanks_between_statements_are_dropped() -> None:
    text = UP + "SELECT 1;\n-- right after\n\n-- dangling\nSELECT\n\n-- inside\n  2;\n\n"
    assert up(text) == ["SELECT 1;", "SELECT\n\n-- inside\n  2;"]


# --- §1.5 StatementBegin / StatementEnd -----------------------------------------------------


def test_block_is_one_statement() -> None:
    text = (
        UP + BEGIN + "\n-- dropped\n\nCREATE TABLE a (id int);\n\nCREATE TABLE b (id int);\n-- kept\n\n" + END
    )
    assert up(text) == ["CREATE TABLE a (id int);\n\nCREATE TABLE b (id int);\n-- kept"]


def test_block_without_semicolon_is_accepted() -> None:
    text = (
        UP + BEGIN + "create table t ( id int );\nupdate rows set value = now() -- missing semicolon\n" + END
    )
    assert up(text) == ["create table t ( id int );\nupdate rows set value = now() -- missing semicolon"]


def test_blocks_in_down() -> None:
    text = UP + "SELECT 1;\n" + DOWN + BEGIN + "DO $$ BEGIN\n  PERFORM 1;\nEND $$;\n" + END + "SELECT 2;\n"
    assert down(text) == ["DO $$ BEGIN\n  PERFORM 1;\nEND $$;", "SELECT 2;"]
    assert up(text) == ["SELECT 1;"]


def test_annotations_inside_a_block_are_processed() -> None:
    text = UP + BEGIN + "SELECT '$$', '$A';\n-- +goose ENVSUB ON\nSELECT '$A';\n-- +goose ENVSUB OFF\n" + END
    assert up(text, {"A": "x"}) == ["SELECT '$$', '$A';\nSELECT 'x';"]


# --- §1.6 quirks ----------------------------------------------------------------------------


def test_quirk1_empty_block_loses_the_next_sql_line() -> None:
    assert up(UP + BEGIN + END + "SELECT 1;\nSELECT 2;\n") == ["", "SELECT 2;"]
    assert up(UP + BEGIN + "-- only a comment\n\n" + END + "\nSELECT 1;\nSELECT 2;\n") == ["", "SELECT 2;"]
    assert down(UP + DOWN + BEGIN + END + "DROP TABLE x;\n") == [""]


def test_quirk2_whitespace_line_keeps_following_comments() -> None:
    assert up(UP + "   \n-- leading comment\nSELECT 1;\n") == ["-- leading comment\nSELECT 1;"]
    assert up(UP + "\t\n-- leading comment\nSELECT 1;\n") == ["-- leading comment\nSELECT 1;"]
    assert up(UP + "-- leading comment\nSELECT 1;\n") == ["SELECT 1;"]


def test_quirk3_unterminated_statement_merges_into_next_block() -> None:
    assert up(UP + "SELECT 1\n" + BEGIN + "SELECT 2;\n" + END) == ["SELECT 1\nSELECT 2;"]


def test_quirk4_unterminated_statement_only_fails_its_own_direction() -> None:
    text = UP + "SELECT 1;\n" + DOWN + "DROP TABLE x\n"
    assert up(text) == ["SELECT 1;"]
    assert error(text, "down").goose_message.startswith(
        "failed to parse migration: state 4, direction: down:"
    )
    text = UP + "SELECT 1\n"
    assert down(text) == []
    assert error(text, "up").line == 2


def test_quirk5_only_noise_before_up() -> None:
    assert up("    \n\t\n-- c\n\n" + UP + "SELECT 1;\n") == ["SELECT 1;"]
    assert error("-- c\nSELECT 0;\n" + UP).line == 2


# --- §1.7 NO TRANSACTION --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "-- +goose NO TRANSACTION\n" + UP + "SELECT 1;\n" + DOWN + "SELECT 2;\n",
        UP + "SELECT 1;\n-- +goose NO TRANSACTION\n" + DOWN + "SELECT 2;\n",
        UP + BEGIN + "SELECT 1;\n-- +goose NO TRANSACTION\n" + END + DOWN + "SELECT 2;\n",
        UP + "SELECT 1;\n" + DOWN + "SELECT 2;\n-- +goose no transaction",
    ],
)
def test_no_transaction_anywhere_applies_to_both_directions(text: str) -> None:
    assert parse(text, "up") == ParsedSQL(["SELECT 1;"], False)
    assert parse(text, "down") == ParsedSQL(["SELECT 2;"], False)


def test_use_tx_defaults_to_true() -> None:
    assert parse(UP + "SELECT 1;\n", "up").use_tx is True


# --- §1.8 ENVSUB ----------------------------------------------------------------------------


def test_envsub_is_off_by_default() -> None:
    assert up(UP + "SELECT '$A ${B:-x} $1 $$';\n", {"A": "a"}) == ["SELECT '$A ${B:-x} $1 $$';"]


def test_envsub_toggles() -> None:
    text = "-- +goose ENVSUB ON\n" + UP + "SELECT '$A';\n-- +goose ENVSUB OFF\nSELECT '$A';\n"
    text += "-- +goose ENVSUB ON\nSELECT '${A}x', '${B:-d}', '${A-d}';\n"
    assert up(text, {"A": "v"}) == ["SELECT 'v';", "SELECT '$A';", "SELECT 'vx', 'd', 'v';"]


def test_envsub_skipped_leading_comments_are_not_expanded() -> None:
    text = "-- +goose ENVSUB ON\n" + UP + "-- costs $1\nSELECT 1;\n"
    assert up(text) == ["SELECT 1;"]


def test_envsub_comment_inside_a_statement_is_expanded() -> None:
    text = "-- +goose ENVSUB ON\n" + UP + "SELECT 1\n-- costs $1\n;\n"
    err = error(text)
    assert (err.goose_message, err.line) == (
        "variable substitution failed: Expected identifier to start with a letter, got 1:\n-- costs $1",
        4,
    )


def test_envsub_other_direction_is_expanded_too() -> None:
    text = "-- +goose ENVSUB ON\n" + UP + "SELECT 1;\n" + DOWN + "SELECT ${X?is required};\n"
    expected = "variable substitution failed: $X: is required:\nSELECT ${X?is required};"
    assert error(text, "up").goose_message == expected
    assert error(text, "down").goose_message == expected
    assert up(text, {"X": ""}) == ["SELECT 1;"]


def test_envsub_semicolon_check_sees_expanded_text() -> None:
    text = "-- +goose ENVSUB ON\n" + UP + "SELECT 1$END\nSELECT 2;\n"
    assert up(text, {"END": ";"}) == ["SELECT 1;", "SELECT 2;"]
    assert up(text, {"END": " -- ;"}) == ["SELECT 1 -- ;\nSELECT 2;"]


def test_envsub_breaks_dollar_quotes() -> None:
    text = "-- +goose ENVSUB ON\n" + UP + "DO $$ BEGIN PERFORM 1; END $$;\n"
    assert up(text) == ["DO $ BEGIN PERFORM 1; END $;"]


def test_envsub_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWATCH_SQLPARSE_TEST_VAR", "from-env")
    text = "-- +goose ENVSUB ON\n" + UP + "SELECT '$OPENWATCH_SQLPARSE_TEST_VAR';\n"
    assert parse(text, "up").statements == ["SELECT 'from-env';"]
    assert parse(text, "up", environ={}).statements == ["SELECT '';"]


# --- errors and decoding (§1.9: callers add their own prefixes) -----------------------------


def test_parse_error_carries_file_and_line() -> None:
    err = error(UP + "SELECT 1;\n-- +goose Bogus\n")
    assert (err.filename, err.line) == ("m.sql", 3)
    detail = '"Bogus" not supported: invalid annotation'
    assert str(err) == f'm.sql:3: failed to parse annotation line "-- +goose Bogus": {detail}'
    assert isinstance(err, Exception)


def test_default_filename() -> None:
    with pytest.raises(ParseError, match=r"^<string>:1: "):
        parse("", "up")


def test_bad_direction() -> None:
    with pytest.raises(ValueError):
        parse(UP, "sideways")  # type: ignore[arg-type]


def test_decode_is_strict_utf8_and_names_the_line() -> None:
    assert decode("-- +goose Up\nSELECT 'é';\n".encode(), "a.sql") == "-- +goose Up\nSELECT 'é';\n"
    with pytest.raises(ParseError) as info:
        decode(b"-- +goose Up\nSELECT 1;\nSELECT '\xff';\n", "a.sql")
    assert (info.value.filename, info.value.line) == ("a.sql", 3)
    assert "0xff" in info.value.goose_message
    # A byte-order mark is kept, so (as in goose) it makes the first line SQL text.
    text = decode(b"\xef\xbb\xbf-- +goose Up\nSELECT 1;\n", "bom.sql")
    err = error(text)
    assert (
        err.goose_message
        == f'failed to parse migration: unexpected state 0 on line "\\ufeff-- +goose Up", {SEE}'
    )


def test_go_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\a\b\f\n\r\t\v") == '"\\a\\b\\f\\n\\r\\t\\v"'
    assert go_quote("\x00\x7f\x85\u00ad") == '"\\x00\\x7f\\u0085\\u00ad"'
    assert go_quote("é€😀 ") == '"é€😀 "'
    assert go_quote("\u00a0\u2028\U000e0001") == '"\\u00a0\\u2028\\U000e0001"'
    assert go_quote("\udcff") == '"\\xff"'
