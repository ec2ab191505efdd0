"""The built wheel carries the rule catalogue and the section table: install it into a fresh
virtual environment and use it from outside the source tree."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_lists_rules(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = dist.glob("secl-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = env_dir / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", str(wheel)], check=True, capture_output=True)
    secl = env_dir / "bin" / "secl"
    out = subprocess.run(
        [str(secl), "rule", "--all"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    codes = {line.split()[0] for line in out.splitlines() if line.startswith("SECL")}
    shipped = {p.stem for p in (REPO / "rules").glob("SECL*.toml")}
    assert codes == shipped and "SECL101" in codes
    # The section table is inside the wheel too: a check works away from the source tree.
    (tmp_path / "p.bpf.c").write_text('SEC("kprobes/x")\nint f(void *ctx) { return 0; }\n')
    r = subprocess.run(
        [str(secl), "check", "--output-format", "concise", "p.bpf.c"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1 and "SECL101" in r.stdout, r.stderr
