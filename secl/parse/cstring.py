"""Decode C string literals the way a C compiler joins and unescapes them."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]+|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|\r\n|.)", re.S)
_SIMPLE = {
    "n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "?": "?",
}  # fmt: skip
_PREFIX = re.compile(r'^(u8|u|U|L)?"')


def _unescape(match: re.Match[str]) -> str:
    esc = match.group(1)
    if esc in _SIMPLE:
        return _SIMPLE[esc]
    if esc[0] == "x":
        return chr(int(esc[1:], 16) & 0xFF)
    if esc[0] in "uU":
        return chr(int(esc[1:], 16))
    if esc[0] in "01234567":
        return chr(int(esc, 8) & 0xFF)
    if esc in ("\n", "\r\n", "\r"):  # a line continuation inside a literal (any line end)
        return ""
    return esc


def decode_literal(text: str) -> str | None:
    """`"kprobe/\\x66oo"` -> `kprobe/foo`; None if `text` is not one whole string literal."""
    m = _PREFIX.match(text)
    if m is None or len(text) < m.end() + 1 or not text.endswith('"'):
        return None
    body = text[m.end() : -1]
    return _ESCAPE.sub(_unescape, body) if "\\" in body else body
