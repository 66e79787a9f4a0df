"""goose ENVSUB: variable substitution with the semantics of mfridman/interpolate v0.0.2.

goose pins that library and calls it on one source line at a time while `-- +goose ENVSUB ON`
is in effect. This module reproduces its observable behaviour (results and error texts) from
the description in the compatibility reference; it is pure and does no I/O.

Grammar (a POSIX-like subset):

* ``\\\\`` is kept as two backslashes; ``\\$`` and ``$$`` give ``$``; ``$(`` is kept literally.
* ``$NAME`` and ``${NAME}`` expand to the value, or ``""`` when unset. A name is a Unicode letter
  followed by letters, numbers or ``_`` (greedy).
* ``${NAME:-word}`` (unset or empty), ``${NAME-word}`` (unset only), ``${NAME?msg}`` (error when
  unset), ``${NAME:offset}`` and ``${NAME:offset:length}`` (byte-based substring, as in Go).
* A ``$`` as the last character is literal; any other ``$`` must start an expansion.

Errors raise `EnvsubError` whose ``str()`` is the library's exact message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["GO_SPACE", "EnvsubError", "go_quote", "go_trim_space", "interpolate"]

_REPLACEMENT = "\ufffd"  # what Go's %c prints for end of input (rune -1)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1


class EnvsubError(Exception):
    """A parse or expansion error, with the text mfridman/interpolate would return."""


# ---------------------------------------------------------------------------------------------
# Go string helpers (shared with sqlparse)

#: Go's unicode.IsSpace set, used by strings.TrimSpace and bufio.ScanWords.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_trim_space(s: str) -> str:
    """Go's strings.TrimSpace (Unicode White_Space, not Python's wider isspace set)."""
    return s.strip(GO_SPACE)


def go_quote(s: str) -> str:
    """Go's strconv.Quote (what fmt's %q prints for a string).

    Surrogate escapes (U+DC80..U+DCFF, how invalid bytes survive in a str) print as `\\xNN`.
    """
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        else:
            code = ord(ch)
            if code < 0x20 or code == 0x7F:
                out.append(f"\\x{code:02x}")
            elif 0xDC80 <= code <= 0xDCFF:
                out.append(f"\\x{code - 0xDC00:02x}")
            elif 0xD800 <= code <= 0xDFFF:
                out.append("\\ufffd")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _is_letter(ch: str) -> bool:
    return ch.isalpha()  # Python's isalpha is exactly the Unicode L categories, like unicode.IsLetter


def _is_ident_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch)[0] == "N"


def _atoi(text: str) -> int:
    """Go's strconv.Atoi on a 64-bit platform, raising ValueError with Go's message."""
    quoted = go_quote(text)
    syntax = ValueError(f"strconv.Atoi: parsing {quoted}: invalid syntax")
    out_of_range = ValueError(f"strconv.Atoi: parsing {quoted}: value out of range")
    raw = text.encode("utf-8", "surrogateescape")
    if not raw:
        raise syntax
    if len(raw) < 19:
        digits = raw[1:] if raw[:1] in (b"+", b"-") else raw
        if not digits or any(b < 0x30 or b > 0x39 for b in digits):
            raise syntax
        return int(raw.decode("ascii"))
    negative = raw[:1] == b"-"
    digits = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not digits:
        raise syntax
    value = 0
    for b in digits:
        if b < 0x30 or b > 0x39:
            raise syntax
        value = value * 10 + (b - 0x30)
        if value > _UINT64_MAX:
            raise out_of_range
    if not negative and value > _INT64_MAX:
        raise out_of_range
    if negative and value > _INT64_MAX + 1:
        raise out_of_range
    return -value if negative else value


# ---------------------------------------------------------------------------------------------
# The tree


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Default:
    name: str
    content: list[_Node]
    when_empty: bool  # ":-" when True, "-" when False


@dataclass(frozen=True)
class _Required:
    name: str
    message: list[_Node]


@dataclass(frozen=True)
class _Substring:
    name: str
    offset: int
    length: int | None


_Node = _Text | _Var | _Default | _Required | _Substring


def _expand(nodes: list[_Node], env: Mapping[str, str]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Var):
            out.append(env.get(node.name, ""))
        elif isinstance(node, _Default):
            value = env.get(node.name)
            if value is None or (node.when_empty and value == ""):
                out.append(_expand(node.content, env))
            else:
                out.append(value)
        elif isinstance(node, _Required):
            value = env.get(node.name)
            if value is None:
                message = _expand(node.message, env) or "not set"
                raise EnvsubError(f"${node.name}: {message}")
            out.append(value)
        else:
            out.append(_substring(env.get(node.name, ""), node.offset, node.length))
    return "".join(out)


def _substring(value: str, offset: int, length: int | None) -> str:
    """Go slices strings by byte; so do we (invalid UTF-8 survives as surrogate escapes)."""
    raw = value.encode("utf-8", "surrogateescape")
    size = len(raw)
    start = offset + size if offset < 0 else offset
    start = min(max(start, 0), size)
    if length is None:
        end = size
    elif length >= 0:
        end = start + length
    else:
        end = max(length + size, start)
    end = min(end, size)
    return raw[start:end].decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------
# The parser (recursive descent over code points; Go works on bytes, which is equivalent here
# because every character the grammar looks at is ASCII)


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def scan_until(self, stop: str) -> str:
        # Go's scanner also stops at utf8.RuneError, i.e. at a literal U+FFFD (or a bad byte).
        start = self.pos
        s = self.s
        n = len(s)
        pos = self.pos
        while pos < n:
            ch = s[pos]
            if ch in stop or ch == _REPLACEMENT or "\udc80" <= ch <= "\udcff":
                break
            pos += 1
        self.pos = pos
        return s[start:pos]

    def expression(self, stop: str = "") -> list[_Node]:
        nodes: list[_Node] = []
        s = self.s
        text_stop = "$\\" + stop
        while True:
            ch = self.peek()
            if not ch or ch in stop:
                return nodes
            two = s[self.pos : self.pos + 2]
            if two == "\\\\":
                self.pos += 2
                nodes.append(_Text("\\\\"))
                continue
            if two in ("\\$", "$$"):
                self.pos += 2
                nodes.append(_Text("$"))
                continue
            if two == "$(":
                self.pos += 2
                nodes.append(_Text("$("))
                continue
            if ch == "$" and self.pos < len(s) - 1:
                nodes.append(self.expansion())
                continue
            self.pos += 1
            nodes.append(_Text(ch + self.scan_until(text_stop)))

    def identifier(self) -> str:
        ch = self.peek()
        if not ch or not _is_letter(ch):
            raise EnvsubError(f"Expected identifier to start with a letter, got {_show(ch)}")
        start = self.pos
        s = self.s
        n = len(s)
        pos = self.pos
        while pos < n and _is_ident_char(s[pos]):
            pos += 1
        self.pos = pos
        return s[start:pos]

    def expansion(self) -> _Node:
        self.next()  # the "$"
        if self.peek() == "{":
            return self.brace()
        return _Var(self.identifier())

    def brace(self) -> _Node:
        self.next()  # the "{"
        name = self.identifier()
        if self.peek() == "}":
            self.next()
            return _Var(name)
        op = self.next()
        node: _Node
        if op == ":":
            if self.peek() == "-":
                self.next()
                node = _Default(name, self.expression("}"), when_empty=True)
            else:
                node = self.substring(name)
        elif op == "-":
            node = _Default(name, self.expression("}"), when_empty=False)
        elif op == "?":
            node = _Required(name, self.expression("}"))
        else:
            raise EnvsubError(f"Expected an operator, got {_show(op)}")
        end = self.next()
        if end != "}":
            raise EnvsubError(f"Expected brace expansion to end with }}, got {_show(end)}")
        return node

    def substring(self, name: str) -> _Node:
        offset_text = self.scan_until(":}")
        try:
            offset = _atoi(go_trim_space(offset_text))
        except ValueError as err:
            raise EnvsubError(f"Unable to parse offset: {err}") from None
        if self.peek() == "}":
            return _Substring(name, offset, None)
        self.next()
        length_text = self.scan_until("}")
        try:
            length = _atoi(go_trim_space(length_text))
        except ValueError as err:
            raise EnvsubError(f"Unable to parse length: {err}") from None
        return _Substring(name, offset, length)


def _show(ch: str) -> str:
    """Go's %c of a rune: end of input (-1) and invalid bytes print as U+FFFD."""
    if not ch or "\udc80" <= ch <= "\udcff":
        return _REPLACEMENT
    return ch


def interpolate(line: str, env: Mapping[str, str]) -> str:
    """Expand `line` with values from `env`; raise EnvsubError with the library's message."""
    if "$" not in line:
        return line  # without "$" every rule leaves the text unchanged
    return _expand(_Parser(line).expression(), env)
