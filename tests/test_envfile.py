"""systemd EnvironmentFile syntax, as systemd 252 reads it (pure)."""

from __future__ import annotations

from openwatch.envfile import parse


def test_plain_comments_and_blanks() -> None:
    env = parse("# comment\n; also a comment\n\nA=1\n  B = two words  \nC=\n")
    assert env.values == {"A": "1", "B": "two words", "C": ""}
    assert env.lines == {"A": 4, "B": 5, "C": 6}


def test_quotes_keep_specials() -> None:
    text = 'DSN=\'postgres://u:p&ss w0rd#x@h/db\'\nD="a \\"q\\" \\$HOME \\n \\\\ #x"\n'
    env = parse(text)
    assert env.values["DSN"] == "postgres://u:p&ss w0rd#x@h/db"
    # inside double quotes only " \ ` $ are escapes; \n stays a backslash and an n
    assert env.values["D"] == 'a "q" $HOME \\n \\ #x'


def test_single_quotes_are_literal_and_span_lines() -> None:
    env = parse("A='x\\y $z \"q\"'\nB='line1\nline2'\n")
    assert env.values == {"A": 'x\\y $z "q"', "B": "line1\nline2"}


def test_hash_in_unquoted_value_is_not_a_comment() -> None:
    assert parse("A=x#y ;z\n").values == {"A": "x#y ;z"}


def test_backslash_escapes_and_continuation_unquoted() -> None:
    env = parse("A=a\\ b\\\\c\\\nd\nB=trail\\ \n")
    assert env.values == {"A": "a b\\cd", "B": "trail "}


def test_quotes_only_special_at_value_start() -> None:
    env = parse("A='x'y\nB=x 'y'\nC=\"a\" 'b'\n")
    assert env.values == {"A": "xy", "B": "x 'y'", "C": "ab"}


def test_export_is_ignored_like_systemd() -> None:
    env = parse("export OPENWATCH_DATABASE_DSN=postgres://x\nA=1\nnot an assignment\n")
    assert env.values == {"A": "1"}
    assert env.ignored == [(1, "export OPENWATCH_DATABASE_DSN")]


def test_later_assignment_wins_and_no_final_newline() -> None:
    env = parse('A=1\nA=2\nB="unterminated')
    assert env.values == {"A": "2", "B": "unterminated"}
    assert env.lines["A"] == 2


def test_comment_continued_by_backslash_systemd_252() -> None:
    assert parse("# a \\\nA=hidden\nB=1\n").values == {"B": "1"}


def test_crlf_line_endings() -> None:
    assert parse("A=1\r\nB='x'\r\n").values == {"A": "1", "B": "x"}
