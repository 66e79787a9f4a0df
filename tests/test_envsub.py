"""ENVSUB: the mfridman/interpolate v0.0.2 semantics goose uses (goose-compat.md §1.8)."""

from __future__ import annotations

import pytest

from openwatch.migrations.envsub import EnvsubError, interpolate

ENV = {"NAME": "foo", "EMPTY": "", "ÄB": "umlaut", "A1": "a-one", "V": "héllo", "WORD": "abcdef"}
FFFD = "\ufffd"  # what Go's %c prints at the end of the input


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no dollar here", "no dollar here"),
        ("$NAME", "foo"),
        ("${NAME}", "foo"),
        ("x${NAME}y", "xfooy"),
        ("$NAME.x", "foo.x"),
        ("$UNSET|", "|"),
        ("${UNSET}|", "|"),
        ("$NAME_x", ""),  # greedy: the variable is NAME_x
        ("$A1", "a-one"),  # digits continue a name
        ("$NAME-x", "foo-x"),
        ("$ÄB", "umlaut"),  # a Unicode letter starts a name
        ("${NAME:-d}", "foo"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${NAME-d}", "foo"),
        ("${UNSET-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET:-}", ""),
        ("${UNSET:-${NAME}}", "foo"),
        ("${UNSET:-x$NAME y}", "xfoo y"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a}b}", "ab}"),  # word stops at the first "}"
        ("${NAME:-${MISSING?never evaluated}}", "foo"),
        ("${EMPTY?unused}", ""),
        ("${NAME?unused}", "foo"),
        ("${WORD:2}", "cdef"),
        ("${WORD:2:3}", "cde"),
        ("${WORD: -2}", "ef"),
        ("${WORD: -4:2}", "cd"),
        ("${WORD:1:-1}", "bcde"),
        ("${WORD:4:-3}", ""),
        ("${WORD:10}", ""),
        ("${WORD: -10}", "abcdef"),
        ("${WORD:0:100}", "abcdef"),
        ("${WORD:+1: 2 }", "bc"),
        ("${UNSET:1}", ""),
        ("${V:1:2}", "é"),  # Go slices bytes: bytes 1-2 are the two bytes of "é"
        ("$$", "$"),
        ("$$NAME", "$NAME"),
        ("\\$NAME", "$NAME"),
        ("\\\\$NAME", "\\\\foo"),  # an escaped backslash stays doubled and does not escape "$"
        ("a\\b", "a\\b"),
        ("$(date)", "$(date)"),
        ("cost$", "cost$"),  # "$" as the last character is literal
        ("${UNSET:-$$}", "$"),
        ("DO $$ BEGIN END $$;", "DO $ BEGIN END $;"),
        ("'\\$NAME \\$NAME' ${NAME}", "'$NAME $NAME' foo"),
    ],
)
def test_expansions(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET?need it}", "$UNSET: need it"),
        ("${UNSET?}", "$UNSET: not set"),
        ("${UNSET?need $NAME}", "$UNSET: need foo"),
        ("${SOME_UNSET_VAR?required env var not set} text,", "$SOME_UNSET_VAR: required env var not set"),
        ("${UNSET:-${X?inner}}", "$X: inner"),
        ("${NAME:?msg}", 'Unable to parse offset: strconv.Atoi: parsing "?msg": invalid syntax'),
        ("${NAME:x}", 'Unable to parse offset: strconv.Atoi: parsing "x": invalid syntax'),
        ("${NAME:}", 'Unable to parse offset: strconv.Atoi: parsing "": invalid syntax'),
        ("${NAME:1_0}", 'Unable to parse offset: strconv.Atoi: parsing "1_0": invalid syntax'),
        ("${NAME:+}", 'Unable to parse offset: strconv.Atoi: parsing "+": invalid syntax'),
        (
            "${NAME: 99999999999999999999}",
            'Unable to parse offset: strconv.Atoi: parsing "99999999999999999999": value out of range',
        ),
        (
            "${NAME:9223372036854775808}",
            'Unable to parse offset: strconv.Atoi: parsing "9223372036854775808": value out of range',
        ),
        (
            "${NAME:1234567890123456789x}",
            'Unable to parse offset: strconv.Atoi: parsing "1234567890123456789x": invalid syntax',
        ),
        ("${NAME:1:y}", 'Unable to parse length: strconv.Atoi: parsing "y": invalid syntax'),
        ("${NAME:1", 'Unable to parse length: strconv.Atoi: parsing "": invalid syntax'),
        ("${NAME:é}", 'Unable to parse offset: strconv.Atoi: parsing "é": invalid syntax'),
        ("${NAME:\t}", 'Unable to parse offset: strconv.Atoi: parsing "": invalid syntax'),
        ("$1", "Expected identifier to start with a letter, got 1"),
        ("'$ 5'", "Expected identifier to start with a letter, got  "),
        ("$'", "Expected identifier to start with a letter, got '"),
        ("$_X", "Expected identifier to start with a letter, got _"),
        ("${1}", "Expected identifier to start with a letter, got 1"),
        ("${", f"Expected identifier to start with a letter, got {FFFD}"),
        ("${UNSET:-$}", "Expected identifier to start with a letter, got }"),
        ("${A!x}", "Expected an operator, got !"),
        ("'${A'", "Expected an operator, got '"),
        ("${A", f"Expected an operator, got {FFFD}"),
        ("${A:-x", f"Expected brace expansion to end with }}, got {FFFD}"),
        ("${A?x", f"Expected brace expansion to end with }}, got {FFFD}"),
        ("${NAME:1:2", f"Expected brace expansion to end with }}, got {FFFD}"),
        # The whole line is parsed before anything is expanded: the syntax error wins.
        ("${UNSET?first} $1", "Expected identifier to start with a letter, got 1"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(EnvsubError) as info:
        interpolate(text, ENV)
    assert str(info.value) == message


def test_first_expansion_error_wins() -> None:
    with pytest.raises(EnvsubError, match=r"^\$B: second$") as info:
        interpolate("${NAME?first} ${B?second} ${C?third}", ENV)
    assert "third" not in str(info.value)


def test_substring_can_cut_a_character_in_two() -> None:
    # Go returns the raw bytes; we keep them as surrogate escapes so nothing is lost.
    cut = interpolate("${V:0:2}", ENV)
    assert cut.encode("utf-8", "surrogateescape") == "hé".encode()[:2]
