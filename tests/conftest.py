"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def selftests() -> Path:
    """The Linux BPF selftests tree (scripts/fetch-selftests; scripts/test exports it)."""
    root = os.environ.get("SECL_LINUX_SELFTESTS")
    if not root or not os.path.isdir(os.path.join(root, "progs")):
        pytest.skip("SECL_LINUX_SELFTESTS is not set to a tools/testing/selftests/bpf tree")
    return Path(root)
