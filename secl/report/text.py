"""Text for a terminal: what a source or a file name holds must not act on the terminal.

C0 controls and DEL become their Unicode control pictures (ESC is shown as `␛`) and the bidi
embedding, override and isolate controls U+FFFD, as rustc and ruff print source lines
(annotate-snippets, src/renderer/render.rs: OUTPUT_REPLACEMENTS and normalize_whitespace).
Each replacement is one character one cell wide, so a caret under a source line stays in
place. secl also replaces the C1 controls (U+0080-U+009F: U+009B is CSI to some terminals)
and the bidi marks (LRM, RLM, ALM) with U+FFFD, and writes the undecodable bytes of a file
name (Python's surrogate escapes) as `\\xNN`.
"""

from __future__ import annotations

import re
from functools import cache

_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}
_TABLE[0x7F] = "\u2421"
_TABLE.update({c: "\ufffd" for c in range(0x80, 0xA0)})
_TABLE.update({c: "\ufffd" for c in (0x061C, 0x200E, 0x200F)})
_TABLE.update({c: "\ufffd" for c in range(0x202A, 0x202F)})
_TABLE.update({c: "\ufffd" for c in range(0x2066, 0x206A)})
_TABLE.update({c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)})
_TABLE.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000) if c not in _TABLE})

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str, keep: str = "\t\n") -> str:
    """`text` with every character that could act on a terminal made visible; the characters
    of `keep` (tab and newline by default) stay as they are."""
    if _UNSAFE.search(text) is None:
        return text
    return text.translate(_table(keep))


@cache
def _table(keep: str) -> dict[int, str]:
    return {c: r for c, r in _TABLE.items() if chr(c) not in keep}


def undecodable_as_escapes(text: str, backslash: str = "\\") -> str:
    """Lone surrogates (a file name's undecodable bytes) as the text `\\xNN` (`\\uXXXX` for
    the others), so that the text encodes as UTF-8; nothing else changes. Inside JSON text
    the backslash itself is written `\\\\` (`backslash`)."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: _TABLE[ord(m.group())].replace("\\", backslash), text)


_SURROGATE = re.compile("[\ud800-\udfff]")
