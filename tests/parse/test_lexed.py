"""The tokens before a site in an ERROR node, lexed once per node (secl.parse.tree._Lexed):
the same as a lexer that stops at the site."""

from __future__ import annotations

import pytest

from secl.parse.tree import _Lexed, lex

SOURCE = b"""int a = 1; /* a comment */ char *s = "a string with ; inside";
#if X
int b;
#else
int c;
#endif
// line comment
identifier_long_enough another 0x1234 'c' -> ++ ... SEC("x") int f(void) { return 0; }
"""


@pytest.mark.parametrize("start", [0, 64])
def test_tokens_up_to_any_stop_are_those_of_a_lexer_that_stops_there(start: int) -> None:
    lexed = _Lexed(SOURCE, start, len(SOURCE))
    crossed = 0
    for stop in range(len(SOURCE), start - 1, -1):  # backwards: the tokens are read already
        found = lexed.upto(stop)
        if found is None:
            crossed += 1
            continue
        assert found == list(lex(SOURCE, start, stop)), stop
    fresh = _Lexed(SOURCE, start, len(SOURCE))
    for stop in range(start, len(SOURCE) + 1, 7):  # forwards: read as far as asked
        found = fresh.upto(stop)
        assert found is None or found == list(lex(SOURCE, start, stop)), stop
    assert crossed > 10  # stops inside a token or a directive: lexed again by the caller
