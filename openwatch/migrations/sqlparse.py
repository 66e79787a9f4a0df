"""The goose v3 SQL-flavor parser, reproduced exactly (pure, no I/O).

`parse()` splits one migration file into the statements of one direction, exactly as goose
v3.27.3's `internal/sqlparser.ParseSQLMigration` does: same line handling, same seven states,
same annotation rules, same semicolon rule, same quirks, same error texts. Behaviour is taken
from the compatibility reference (section 1) and checked against goose's own output on its
corpus (tests/test_sqlparse_corpus.py).

Errors raise `ParseError`; ``err.goose_message`` is goose's text and ``str(err)`` is
``<filename>:<line>: <goose_message>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from openwatch.migrations.envsub import GO_SPACE, EnvsubError, go_quote, go_trim_space, interpolate

__all__ = [
    "MAX_LINE_BYTES",
    "ParseError",
    "ParsedSQL",
    "decode",
    "ends_with_semicolon",
    "go_quote",
    "go_trim_space",
    "parse",
]

#: bufio.Scanner's buffer in goose: a line (without its "\n") must be shorter than this, in bytes.
MAX_LINE_BYTES = 4 * 1024 * 1024

_SEE = "see https://github.com/pressly/goose#sql-migrations"

# The parser states; their numbers appear in goose's messages.
_START, _UP, _BEGIN_UP, _END_UP, _DOWN, _BEGIN_DOWN, _END_DOWN = range(7)
_UP_STATES = (_UP, _BEGIN_UP, _END_UP)

_UP_CMD = "up"
_DOWN_CMD = "down"
_BEGIN_CMD = "statementbegin"
_END_CMD = "statementend"
_NOTX_CMD = "no transaction"
_ENV_ON_CMD = "envsub on"
_ENV_OFF_CMD = "envsub off"
_COMMANDS = frozenset({_UP_CMD, _DOWN_CMD, _BEGIN_CMD, _END_CMD, _NOTX_CMD, _ENV_ON_CMD, _ENV_OFF_CMD})

# A word (whitespace-separated, per Go's unicode.IsSpace) that starts with "--".
_COMMENT_WORD = re.compile(f"(?:^|[{re.escape(GO_SPACE)}])--")


@dataclass(frozen=True)
class ParsedSQL:
    """The statements of one direction, and whether the file runs in a transaction."""

    statements: list[str]
    use_tx: bool


class ParseError(Exception):
    """goose refused the file; `goose_message` is goose's exact text."""

    def __init__(self, filename: str, line: int, goose_message: str) -> None:
        super().__init__(f"{filename}:{line}: {goose_message}")
        self.filename = filename
        self.line = line
        self.goose_message = goose_message


def decode(data: bytes, filename: str = "<bytes>") -> str:
    """Decode a migration file as strict UTF-8; a bad byte raises ParseError naming its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start]
        raise ParseError(
            filename, line, f"invalid UTF-8: byte 0x{bad:02x} at offset {err.start}: {err.reason}"
        ) from None


def _casefold_go(s: str) -> str:
    """Lower-case for comparing with ASCII commands the way Go's strings.EqualFold does.

    Only ASCII letters and the two non-ASCII runes whose simple case folding reaches an ASCII
    letter (U+017F LONG S -> s, U+212A KELVIN SIGN -> k) can match; other characters never do.
    """
    if s.isascii():
        return s.lower()
    return "".join(ch.lower() if ch.isascii() else {"\u017f": "s", "\u212a": "k"}.get(ch, "\x00") for ch in s)


def _annotation(line: str) -> str:
    """goose's extractAnnotation: the normalised command, or an error message (ValueError)."""
    if line.startswith((" ", "\t")):
        raise ValueError(f"{go_quote(line)} contains leading whitespace: invalid annotation")
    cmd = line.replace("--", "").replace("+goose", "", 1)
    if "+goose" in cmd:
        raise ValueError(f"{go_quote(cmd)} contains multiple '+goose' annotations: invalid annotation")
    cmd = go_trim_space(cmd)
    if not cmd:
        raise ValueError("empty annotation")
    folded = _casefold_go(cmd)
    if folded not in _COMMANDS:
        raise ValueError(f"{go_quote(cmd)} not supported: invalid annotation")
    return folded


def ends_with_semicolon(line: str) -> bool:
    """goose's endsWithSemicolon: the last word before the first `--` word ends with `;`."""
    if ";" not in line:
        return False
    match = _COMMENT_WORD.search(line)
    if match is not None:
        line = line[: match.start()]
    return line.rstrip(GO_SPACE).endswith(";")


def _split_lines(text: str) -> list[str]:
    """bufio.ScanLines: split on "\\n", drop one trailing "\\r", no empty line after a final "\\n"."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _missing_semicolon(state: int, direction: str, remaining: str) -> str:
    return (
        f"failed to parse migration: state {state}, direction: {direction}: "
        f"unexpected unfinished SQL query: {go_quote(remaining)}: missing semicolon?"
    )


def parse(
    text: str,
    direction: Literal["up", "down"],
    *,
    filename: str = "<string>",
    environ: Mapping[str, str] | None = None,
) -> ParsedSQL:
    """Parse one goose SQL migration for one direction, exactly as goose v3 does."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    env: Mapping[str, str] = os.environ if environ is None else environ
    want_up = direction == "up"

    statements: list[str] = []
    buf: list[str] = []  # lines of the pending statement (goose's bytes.Buffer, "\n"-joined)
    state = _START
    use_tx = True
    use_envsub = False
    lineno = 0

    def fail(message: str) -> ParseError:
        return ParseError(filename, max(lineno, 1), message)

    for raw in _split_lines(text):
        lineno += 1
        if len(raw) >= MAX_LINE_BYTES // 4 and len(raw.encode("utf-8", "surrogateescape")) >= MAX_LINE_BYTES:
            raise fail("failed to scan migration: bufio.Scanner: token too long")
        line = raw[:-1] if raw.endswith("\r") else raw
        trimmed = go_trim_space(line)

        if state == _START and not trimmed:
            continue

        if trimmed.startswith("--") and "+goose" in line:
            try:
                cmd = _annotation(line)
            except ValueError as err:
                raise fail(f"failed to parse annotation line {go_quote(line)}: {err}") from None
            if cmd == _UP_CMD:
                if state != _START:
                    raise fail(f"duplicate '-- +goose Up' annotations; stateMachine={state}, {_SEE}")
                state = _UP
                continue
            if cmd == _DOWN_CMD:
                if state not in (_UP, _END_UP):
                    raise fail(f"must start with '-- +goose Up' annotation, stateMachine={state}, {_SEE}")
                remaining = go_trim_space("\n".join(buf))
                if remaining:
                    raise fail(_missing_semicolon(state, direction, remaining))
                state = _DOWN
                continue
            if cmd == _BEGIN_CMD:
                if state in (_UP, _END_UP):
                    state = _BEGIN_UP
                elif state in (_DOWN, _END_DOWN):
                    state = _BEGIN_DOWN
                else:
                    raise fail(
                        "'-- +goose StatementBegin' must be defined after '-- +goose Up' or "
                        f"'-- +goose Down' annotation, stateMachine={state}, {_SEE}"
                    )
                continue
            if cmd == _END_CMD:
                if state == _BEGIN_UP:
                    state = _END_UP
                elif state == _BEGIN_DOWN:
                    state = _END_DOWN
                else:
                    raise fail(
                        f"'-- +goose StatementEnd' must be defined after '-- +goose StatementBegin', {_SEE}"
                    )
                # StatementEnd falls through to the line handling below (goose does; see quirk 1).
            elif cmd == _NOTX_CMD:
                use_tx = False
                continue
            else:
                use_envsub = cmd == _ENV_ON_CMD
                continue

        # Leading comments and empty lines before a statement are skipped. Note "   " is not.
        if not buf and (trimmed.startswith("--") or line == ""):
            continue

        if state not in (_END_UP, _END_DOWN):
            if use_envsub:
                try:
                    line = interpolate(line, env)
                except EnvsubError as err:
                    raise fail(f"variable substitution failed: {err}:\n{line}") from None
            buf.append(line)

        if state == _START:
            raise fail(f"failed to parse migration: unexpected state 0 on line {go_quote(line)}, {_SEE}")
        if (state in _UP_STATES) != want_up:
            buf.clear()
            continue

        if state in (_UP, _DOWN):
            if ends_with_semicolon(line):
                statements.append(go_trim_space("\n".join(buf)))
                buf.clear()
        elif state in (_END_UP, _END_DOWN):
            statements.append(go_trim_space("\n".join(buf)))
            buf.clear()
            state = _UP if state == _END_UP else _DOWN

    if state == _START:
        raise fail(f"failed to parse migration: must start with '-- +goose Up' annotation, {_SEE}")
    if state in (_BEGIN_UP, _BEGIN_DOWN):
        raise fail("failed to parse migration: missing '-- +goose StatementEnd' annotation")
    remaining = go_trim_space("\n".join(buf))
    if remaining:
        raise fail(_missing_semicolon(state, direction, remaining))
    return ParsedSQL(statements=statements, use_tx=use_tx)
