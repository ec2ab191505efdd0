"""Where secl's data files live.

Installed from the wheel, `rules/` sits inside the package (`secl/rules`, see
`[tool.hatch.build.targets.wheel.force-include]` in pyproject.toml). In a source checkout it
is the repository's `rules/`, next to the package directory.
"""

from __future__ import annotations

import os


def rules_dir() -> str:
    """The directory holding the rule catalogue and the generated libbpf section table."""
    # os.path rather than pathlib: pathlib costs several milliseconds of start-up.
    package = os.path.dirname(os.path.realpath(__file__))
    for candidate in (os.path.join(package, "rules"), os.path.join(package, os.pardir, "rules")):
        if os.path.isdir(candidate):
            return os.path.normpath(candidate)
    raise FileNotFoundError(f"no rules/ directory in {package} or its parent")
