"""A reader for systemd ``EnvironmentFile=`` syntax, as systemd 252 (Debian 12, RHEL 9) parses it.

This mirrors the state machine of systemd's ``parse_env_file`` (src/basic/env-file.c):

* ``#`` or ``;`` as the first non-blank character of a line starts a comment; a comment ending in a
  backslash continues onto the next line (systemd 252 behaviour).
* ``KEY=value``: blanks around the key and before the value are dropped, trailing blanks of an unquoted
  value are dropped. A backslash in an unquoted value takes the next character literally; a backslash
  before a newline joins the lines.
* ``'single quoted'``: everything literal up to the next ``'`` (newlines included).
* ``"double quoted"``: a backslash escapes only ``"``, ``\\``, `````` ` `````` and ``$``, and joins lines
  before a newline; otherwise the backslash is kept.
* Quotes are only special at the start of the value or right after a closing quote, so ``A='x'y`` is
  ``xy`` and ``A=x 'y'`` is ``x 'y'``.
* A line without ``=`` is ignored, and so is an assignment whose name is not a valid environment
  variable name: ``export A=b`` is *ignored* by systemd (``export A`` is not a name), and so it is here.
  Ignored assignments are reported in ``EnvFile.ignored`` so a caller can warn about them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, auto

_NEWLINE = "\n\r"
_WHITESPACE = " \t\n\r"
_COMMENTS = "#;"
_SHELL_NEED_ESCAPE = '"\\`$'
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _S(Enum):
    PRE_KEY = auto()
    KEY = auto()
    PRE_VALUE = auto()
    VALUE = auto()
    VALUE_ESCAPE = auto()
    SINGLE_QUOTE = auto()
    DOUBLE_QUOTE = auto()
    DOUBLE_QUOTE_ESCAPE = auto()
    COMMENT = auto()
    COMMENT_ESCAPE = auto()


@dataclass
class EnvFile:
    """The assignments of one file, in order (a later one wins), and the ignored ones."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # key -> line of its (last) assignment
    ignored: list[tuple[int, str]] = field(default_factory=list)  # (line, key as written)


def parse(text: str) -> EnvFile:
    """Parse EnvironmentFile text; never raises on content (systemd does not either)."""
    out = EnvFile()
    state = _S.PRE_KEY
    key: list[str] = []
    value: list[str] = []
    last_key_ws: int | None = None
    last_value_ws: int | None = None
    line = 1
    key_line = 1

    def push() -> None:
        k = "".join(key if last_key_ws is None else key[:last_key_ws])
        v = "".join(value if last_value_ws is None else value[:last_value_ws])
        if _NAME.match(k):
            out.values[k] = v
            out.lines[k] = key_line
        else:
            out.ignored.append((key_line, k))

    for c in text:
        if state is _S.PRE_KEY:
            if c in _COMMENTS:
                state = _S.COMMENT
            elif c not in _WHITESPACE:
                state = _S.KEY
                key, value = [c], []
                last_key_ws = None
                key_line = line
        elif state is _S.KEY:
            if c in _NEWLINE:
                state = _S.PRE_KEY
            elif c == "=":
                state = _S.PRE_VALUE
                last_value_ws = None
            else:
                if c not in _WHITESPACE:
                    last_key_ws = None
                elif last_key_ws is None:
                    last_key_ws = len(key)
                key.append(c)
        elif state is _S.PRE_VALUE:
            if c in _NEWLINE:
                state = _S.PRE_KEY
                push()
            elif c == "'":
                state = _S.SINGLE_QUOTE
            elif c == '"':
                state = _S.DOUBLE_QUOTE
            elif c == "\\":
                state = _S.VALUE_ESCAPE
            elif c not in _WHITESPACE:
                state = _S.VALUE
                value.append(c)
        elif state is _S.VALUE:
            if c in _NEWLINE:
                state = _S.PRE_KEY
                push()
            elif c == "\\":
                state = _S.VALUE_ESCAPE
                last_value_ws = None
            else:
                if c not in _WHITESPACE:
                    last_value_ws = None
                elif last_value_ws is None:
                    last_value_ws = len(value)
                value.append(c)
        elif state is _S.VALUE_ESCAPE:
            state = _S.VALUE
            if c not in _NEWLINE:
                value.append(c)
        elif state is _S.SINGLE_QUOTE:
            if c == "'":
                state = _S.PRE_VALUE
            else:
                value.append(c)
        elif state is _S.DOUBLE_QUOTE:
            if c == '"':
                state = _S.PRE_VALUE
            elif c == "\\":
                state = _S.DOUBLE_QUOTE_ESCAPE
            else:
                value.append(c)
        elif state is _S.DOUBLE_QUOTE_ESCAPE:
            state = _S.DOUBLE_QUOTE
            if c in _SHELL_NEED_ESCAPE:
                value.append(c)
            elif c != "\n":
                value.extend(("\\", c))
        elif state is _S.COMMENT:
            if c == "\\":
                state = _S.COMMENT_ESCAPE
            elif c in _NEWLINE:
                state = _S.PRE_KEY
        elif state is _S.COMMENT_ESCAPE:
            state = _S.COMMENT
        if c == "\n":
            line += 1

    if state in (
        _S.PRE_VALUE,
        _S.VALUE,
        _S.VALUE_ESCAPE,
        _S.SINGLE_QUOTE,
        _S.DOUBLE_QUOTE,
        _S.DOUBLE_QUOTE_ESCAPE,
    ):
        push()
    return out
