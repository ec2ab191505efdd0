"""The did-you-mean stays cheap for long and for many names (issue 13: a 30000-character
name took 34 s, a 47 MB file of 100k unknown names 4 min), with the same suggestions.

No timings: the work is what the edit distance is asked to compute, counted."""

from __future__ import annotations

import itertools
import random

import pytest

import secl.libbpf.table as table
from secl.libbpf import Target, did_you_mean, edit_distance

UPGRADE = Target.parse("upgrade")


def full_distance(left: str, right: str) -> int:
    """The whole table, no band: what the bounded distance must agree with."""
    before: list[int] = []
    row = list(range(len(right) + 1))
    for i, a in enumerate(left, start=1):
        current = [i] + [0] * len(right)
        for j, b in enumerate(right, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (a != b))
            if i > 1 and j > 1 and a == right[j - 2] and left[i - 2] == b:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return row[-1]


def test_bounded_distance_agrees_with_the_whole_table_within_the_limit():
    words = ["".join(w) for n in range(5) for w in itertools.product("abc", repeat=n)]
    rng = random.Random(13)
    words += ["".join(rng.choice("abcd") for _ in range(rng.randint(5, 12))) for _ in range(150)]
    for left, right in itertools.product(words[::3], words[::5]):
        distance = full_distance(left, right)
        assert edit_distance(left, right) == distance, (left, right)
        for limit in range(4):
            assert edit_distance(left, right, limit) == min(distance, limit + 1), (left, right)


def test_bounded_distance_of_far_apart_lengths_is_immediate():
    assert edit_distance("k" * 1_000_000, "kprobe", 3) == 4
    assert edit_distance("kprobe", "", 3) == 4
    assert edit_distance("kporbe", "kprobe", 1) == 1  # a swap is one edit


@pytest.fixture
def distances(monkeypatch) -> list[tuple[int, int, int | None]]:
    """(length of each string, limit) of every distance the suggestions ask for."""
    calls: list[tuple[int, int, int | None]] = []
    bounded = table.edit_distance

    def counted(left: str, right: str, limit: int | None = None) -> int:
        calls.append((len(left), len(right), limit))
        return bounded(left, right) if limit is None else bounded(left, right, limit)

    monkeypatch.setattr(table, "edit_distance", counted)
    return calls


def work(calls: list[tuple[int, int, int | None]]) -> int:
    """An upper bound of the table cells computed: a band of 2 * limit + 1 per row (the
    whole table without a limit)."""
    return sum(
        left * (right + 1 if limit is None else 2 * limit + 1) for left, right, limit in calls
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kprobes/" + "a" * 30000, ["kprobe/" + "a" * 30000]),
        ("kprobes" + "a" * 30000, []),
        ("fentry." + "a" * 30000, ["fentry/" + "a" * 30000]),
        ("x" * 30000 + "/kprobe", []),
    ],
    ids=["slash", "no-separator", "separator-typo", "long-head"],
)
def test_long_names_cost_what_short_ones_do(distances, name, expected):
    # Unbounded, the first name alone costs 30000 cells for each of the ~150 entries.
    assert did_you_mean(name, UPGRADE) == expected
    assert all(limit is not None and limit <= 3 for _, _, limit in distances)
    assert work(distances) < 20_000


def test_each_distinct_name_is_worked_out_once(monkeypatch):
    computed: list[str] = []
    candidates = table._candidates

    def counted(section, target, entries):
        computed.append(section)
        return candidates(section, target, entries)

    monkeypatch.setattr(table, "_candidates", counted)
    name = "kprobes/issue_13_cache_check"
    first = did_you_mean(name, UPGRADE)
    assert did_you_mean(name, UPGRADE) == first == ["kprobe/issue_13_cache_check"]
    assert computed == [name]
    first.append("changed by the caller")  # each caller gets its own list
    assert did_you_mean(name, UPGRADE) == ["kprobe/issue_13_cache_check"]


def test_many_different_names_share_the_work_of_their_parts(distances):
    # 2000 names with the same misspelt head (the 47 MB file of issue 13): the head is compared
    # with the table once, the rest is longer than any entry and compared with none.
    for i in range(2000):
        tail = f"issue_13_function_number_{i:06}"
        assert did_you_mean(f"kretprobes/{tail}", UPGRADE) == [f"kretprobe/{tail}"]
    assert work(distances) < 5_000
