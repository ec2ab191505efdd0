"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _results_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets a results cache of its own outside the trees it writes (tests that
    list a project's files after a run expect only their own; tests/test_cache.py covers the
    cache at its default place)."""
    monkeypatch.setenv("SECL_CACHE_DIR", str(tmp_path_factory.mktemp("secl-cache")))


@pytest.fixture(scope="module")
def selftests() -> Path:
    """The Linux BPF selftests tree (scripts/fetch-selftests; scripts/test exports it)."""
    root = os.environ.get("SECL_LINUX_SELFTESTS")
    if not root or not os.path.isdir(os.path.join(root, "progs")):
        pytest.skip("SECL_LINUX_SELFTESTS is not set to a tools/testing/selftests/bpf tree")
    return Path(root)
