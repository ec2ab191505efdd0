"""The tree-sitter bindings loaded without their packages' __init__, and what a one-file run
imports. Each test runs a fresh interpreter: the point is what gets imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, cwd: Path | None = None, path: str = "") -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), path) if p))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bindings_are_shared_with_a_later_import_of_tree_sitter() -> None:
    out = _python(
        """
        import json, sys
        from secl.parse.tree import parse
        tree = parse(b"int main(void) { return 0; }")
        before = sorted(m for m in ("tree_sitter", "tree_sitter_c", "typing") if m in sys.modules)
        import importlib.util, tree_sitter
        spec = importlib.util.find_spec("tree_sitter._binding")
        print(json.dumps({
            "spec": spec.name,
            "before": before,
            "same_type": type(tree) is tree_sitter.Tree,
            "root": tree.root_node.type,
            "function": tree.root_node.children[0].type,
        }))
        """
    )
    assert json.loads(out) == {
        "spec": "tree_sitter._binding",
        "before": [],
        "same_type": True,
        "root": "translation_unit",
        "function": "function_definition",
    }


def test_a_package_without_a_compiled_binding_takes_the_plain_import(tmp_path: Path) -> None:
    package = tmp_path / "fakebinding"
    package.mkdir()
    (package / "__init__.py").write_text("INIT_RAN = True\n")
    (package / "_binding.py").write_text("VALUE = 42\n")
    out = _python(
        """
        import sys
        from secl.parse.binding import binding
        module = binding("fakebinding")
        print(module.VALUE, getattr(sys.modules["fakebinding"], "INIT_RAN", False))
        """,
        path=str(tmp_path),
    )
    assert out.split() == ["42", "True"]


def test_a_one_file_check_imports_none_of_the_costly_modules(tmp_path: Path) -> None:
    """Start-up cost is measured by bench/bench.py; this only keeps out the modules whose
    import the start-up work removed (typing alone is ~10 ms here)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "probe.bpf.c").write_text(
        '#include "vmlinux.h"\nSEC("kprobe/do_sys_open")\nint BPF_KPROBE(handle)\n{\n'
        "\treturn 0;\n}\n"
    )
    (tmp_path / "probe.c").write_text(
        '#include "probe.skel.h"\nint main(void)\n{\n\tstruct probe *skel = probe__open();\n'
        "\tprobe__attach(skel);\n\treturn 0;\n}\n"
    )
    out = _python(
        """
        import contextlib, io, json, sys
        from secl.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["check", "--output-format", "concise", "probe.bpf.c"])
        costly = ("typing", "pathlib", "importlib.resources", "tomllib", "tree_sitter",
                  "tree_sitter_c", "secl.catalogue", "secl.fix", "secl.verify", "elftools")
        print(json.dumps({"code": code, "loaded": [m for m in costly if m in sys.modules],
                          "upgrade": "secl.analysis.upgrade" in sys.modules}))
        """,
        cwd=tmp_path,
    )
    assert json.loads(out) == {"code": 0, "loaded": [], "upgrade": True}


def test_the_cpp_grammar_is_loaded_only_when_a_cpp_file_is_parsed(tmp_path: Path) -> None:
    """A run of C files never loads tree-sitter-cpp (issue 11); a C++ loader does."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "probe.bpf.c").write_text(
        'SEC("kprobe/do_sys_open")\nint handle(void *ctx)\n{\n\treturn 0;\n}\n'
    )
    loader = (
        '#include "probe.skel.h"\nint main(void)\n{\n\tstruct probe *skel = probe__open();\n'
        '\tbpf_program__attach_kprobe(skel->progs.handle, false, "do_sys_open");\n'
        "\treturn 0;\n}\n"
    )
    (tmp_path / "probe.c").write_text(loader)
    code = """
        import contextlib, io, json, sys
        from secl.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            main(["check", "--no-cache", "."])
        print(json.dumps([m for m in ("tree_sitter_cpp", "tree_sitter_cpp._binding")
                          if m in sys.modules]))
        """
    assert json.loads(_python(code, cwd=tmp_path)) == []
    (tmp_path / "probe.c").rename(tmp_path / "probe.cpp")
    assert json.loads(_python(code, cwd=tmp_path)) == ["tree_sitter_cpp._binding"]
