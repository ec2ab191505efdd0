"""Where secl's data files live.

Installed from the wheel, `rules/` sits inside the package (`secl/rules`, see
`[tool.hatch.build.targets.wheel.force-include]` in pyproject.toml). In a source checkout it
is the repository's `rules/`, next to the package directory.
"""

from __future__ import annotations

from pathlib import Path


def rules_dir() -> Path:
    """The directory holding the rule catalogue and the generated libbpf section table."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "rules", package.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no rules/ directory in {package} or {package.parent}")
