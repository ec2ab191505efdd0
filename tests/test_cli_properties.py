"""The command line over generated file trees, names, contents and configurations (hypothesis).

Whatever the input: no traceback and no internal error, an exit code of 0, 1 or 2, output
that is valid UTF-8 and, for json and sarif, parses; and files are untouched unless a fix
was asked for (then only regular sources change, in content only, and no temporary file is
left). Trees hold FIFOs, links that loop or dangle, hard links, directories named like
sources, binary and empty files, and names with control characters, bidi controls and
bytes that are not UTF-8; configurations are valid, malformed or of the wrong shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secl.cli import main

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SECTIONS = [
    "xdp", "kprobe/do_unlinkat", "kprobes/x", "??xdp", "xdp/foo", "sk_lookup/x", "fentry/",
    "uprobe/usr/lib/libc.so.6:malloc", "kprobe.single/f", "tc", "?kprobe/a+0x10",
    "\x1b]0;t\x07", "k\u202eprobe/x", "x" * 300, "", "kprobe/\\x41",
]  # fmt: skip
LOADER = (
    '#include "{stem}.skel.h"\nint main(void) {{\n'
    "\tstruct {stem} *s = {stem}__open_and_load();\n"
    "\tLIBBPF_OPTS(bpf_kprobe_opts, o, .offset = 0x10);\n"
    '\tbpf_program__attach_kprobe_opts(s->progs.handle, "do_unlinkat", &o);\n}}\n'
)
FRAGMENTS = st.one_of(
    st.sampled_from(SECTIONS).map(lambda s: f'SEC("{s}")\nint handle(void *ctx) {{ return 0; }}\n'),
    st.sampled_from(SECTIONS).map(lambda s: f'#define P "{s}"\nSEC(P "x")\nint p(void *c);\n'),
    st.sampled_from(
        [
            "#define A A\nSEC(A)\nint a(void *c) { return 0; }\n",
            '#if X\n#if Y\nSEC("xdp")\n#endif\n#else\n',
            '#include "shared.h"\nSEC(KP "f")\nint k(void *c) { return 0; }\n',
            '#define KP "kprobe/"\n',
            "// secl: ignore[SECL101]\n",
            "/* unterminated comment\n",
            '"unterminated string\n',
            "\r\n\r",
            "\ufeff",
        ]
    ),
    st.sampled_from(["probe", "shared", "a"]).map(lambda stem: LOADER.format(stem=stem)),
    st.text(max_size=40),
)
CONTENTS = st.one_of(
    st.lists(FRAGMENTS, max_size=5).map(lambda parts: "".join(parts).encode("utf-8", "replace")),
    st.binary(max_size=64),
    st.just(b"\x7fELF\0\0\0"),
    st.just(b""),
    st.lists(FRAGMENTS, max_size=3).map(lambda parts: "".join(parts).encode("latin-1", "replace")),
)
NAMES = st.one_of(
    st.sampled_from(
        [
            b"probe.bpf.c",
            b"probe.c",
            b"shared.h",
            b"a.c",
            b"x y.bpf.c",
            b"caf\xc3\xa9.c",
            b"caf\xe9.bpf.c",
            b"\x1b[31mred.c",
            b"\xe2\x80\xaeevil.c",
            b"build",
            b"-dash.c",
            b"pyproject.toml",
            b".secl.toml",
            b"vmlinux.h",
            b"sub",
            b"x.o",
            b"noext",
            b"main.go",
            b"go.mod",
            b"build.rs",
            b"Cargo.toml",
            b"loader.py",
        ]
    ),
    st.binary(min_size=1, max_size=8).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")),
)
KINDS = ["file", "file", "file", "file", "symlink", "loop", "dangling", "fifo", "dir", "hardlink"]


@dataclass(frozen=True)
class Entry:
    """One entry of a generated tree."""

    directory: bytes  # b"" or b"sub"
    name: bytes
    kind: str
    data: bytes


ENTRIES = st.lists(
    st.builds(
        Entry,
        directory=st.sampled_from([b"", b"", b"sub", b"sub/deep"]),
        name=NAMES,
        kind=st.sampled_from(KINDS),
        data=CONTENTS,
    ),
    max_size=8,
)

KEYS = [
    "select", "extend-select", "ignore", "per-file-ignores", "exclude", "extend-exclude",
    "target-libbpf", "skeleton-map", "defines", "target-arch", "max-file-size", "nope",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(
        [
            '["SECL1"]',
            '["ALL"]',
            '["SECL9999"]',
            '"upgrade"',
            '"1.7"',
            '"64MiB"',
            "100",
            "0",
            "true",
            "5",
            '{ "a.c" = ["SECL1"] }',
            '{ probe = "probe.bpf.c" }',
            '["sub", "*.h", "["]',
            '["X=\\"kprobe/\\""]',
            '"x86_64"',
            "[1, 2]",
            "{}",
        ]
    ),
    st.text(max_size=12).map(json.dumps),
)
CONFIGS = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from([".secl.toml", "pyproject.toml"]),
        st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4),
    ).map(
        lambda c: (
            c[0],
            ("" if c[0] == ".secl.toml" else "[tool.secl]\n")
            + "".join(f"{key} = {value}\n" for key, value in c[1]),
        )
    ),
    st.tuples(st.sampled_from([".secl.toml", "pyproject.toml"]), st.text(max_size=60)),
    st.sampled_from(
        [
            ("pyproject.toml", "[tool]\nsecl = 5\n"),
            ("pyproject.toml", 'tool = "secl"\n'),
            (".secl.toml", "[tool.secl]\nselect = [\n"),
        ]
    ),
)
COMMANDS = st.sampled_from(
    [
        ["check"], ["check", "--output-format", "concise"], ["check", "--output-format", "json"],
        ["check", "--output-format", "sarif"], ["check", "--output-format", "github"],
        ["check", "--select", "ALL", "--output-format", "json"], ["check", "--statistics"],
        ["check", "--diff"], ["sections"], ["sections", "--output-format", "json"],
        ["sections", "--output-format", "concise"], ["fix"], ["fix", "--unsafe-fixes"],
        ["check", "--exclude", "sub"], ["check", "--exclude", "sub/deep/*", "--verbose"],
        ["check", "--target-libbpf", "1.2"], ["check", "--define", "X=1"],
    ]
)  # fmt: skip
FIXES = st.sampled_from([["fix", "--in-place"], ["check", "--fix", "--unsafe-fixes"]])


def build(root: bytes, entries: list[Entry], config: tuple[str, str] | None, marker: bool) -> None:
    if marker:
        os.mkdir(os.path.join(root, b".git"))
    if config is not None:
        with open(os.path.join(root, config[0].encode()), "w", encoding="utf-8") as fh:
            fh.write(config[1])
    made: list[bytes] = []
    for entry in entries:
        directory = os.path.join(root, entry.directory) if entry.directory else root
        with contextlib.suppress(OSError):
            os.makedirs(directory, exist_ok=True)
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue  # `sub` is a file here
        path = os.path.join(directory, entry.name)
        if os.path.lexists(path):
            continue
        with contextlib.suppress(OSError):  # a name the file system refuses is left out
            if entry.kind == "symlink" and made:
                os.symlink(made[-1], path)
            elif entry.kind == "loop":
                os.symlink(entry.name, path)
            elif entry.kind == "dangling":
                os.symlink(b"missing-target", path)
            elif entry.kind == "fifo":
                os.mkfifo(path)
            elif entry.kind == "dir":
                os.mkdir(path)
            elif entry.kind == "hardlink" and made:
                os.link(made[-1], path)
            else:
                with open(path, "wb") as fh:
                    fh.write(entry.data)
                made.append(path)


def snapshot(root: bytes) -> dict[bytes, tuple[object, ...]]:
    """Every entry under `root`: its type, mode, owner, and bytes or link target."""
    out: dict[bytes, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st_ = os.lstat(path)
            content: object = None
            if stat.S_ISLNK(st_.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(st_.st_mode):
                with open(path, "rb") as fh:
                    content = fh.read()
            out[path] = (stat.S_IFMT(st_.st_mode), st_.st_mode, st_.st_uid, content)
    return out


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
    """main() in this process, with byte-exact standard streams."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="")
    err = io.StringIO()
    inp = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, inp
    try:
        code = main(argv)
        out.flush()
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
    return code, out.buffer.getvalue(), err.getvalue()


def check_result(argv: list[str], code: int, out: bytes, err: str) -> None:
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    for bad in ("\x1b", "\x07", "\u202e"):
        assert bad not in err, (argv, err)
    if "--diff" in argv or (argv[0] == "fix" and "--in-place" not in argv):
        return  # a diff holds the sources' bytes as they are, for patch(1)
    text = out.decode("utf-8")  # valid UTF-8 whatever the names and contents
    fmt = argv[argv.index("--output-format") + 1] if "--output-format" in argv else "full"
    if fmt in ("json", "sarif") and code != 2:
        json.loads(text)
    if fmt not in ("json", "sarif"):
        for bad in ("\x1b", "\x07", "\u202e"):
            assert bad not in text, (argv, text)


@contextlib.contextmanager
def tree(entries: list[Entry], config: tuple[str, str] | None, marker: bool):
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="secl-prop-") as tmp:
        root = os.path.join(os.fsencode(tmp), b"t")
        os.mkdir(root)
        build(root, entries, config, marker)
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(cwd)


@SETTINGS
@given(
    entries=ENTRIES,
    config=CONFIGS,
    marker=st.booleans(),
    commands=st.lists(COMMANDS, min_size=1, max_size=3),
)
def test_any_tree_any_config_reading_commands(entries, config, marker, commands) -> None:
    with tree(entries, config, marker) as root:
        before = snapshot(root)
        for command in commands:
            argv = [*command, "."]
            code, out, err = run(argv)
            check_result(argv, code, out, err)
        assert snapshot(root) == before  # nothing was asked to change


@SETTINGS
@given(
    entries=ENTRIES, config=CONFIGS, marker=st.booleans(), command=FIXES, data=CONTENTS,
    rule=st.sampled_from(["SECL101", "unknown-section-name", "nope", "secl2", ""]),
)  # fmt: skip
def test_fixing_changes_only_source_contents(entries, config, marker, command, data, rule) -> None:
    with tree(entries, config, marker) as root:
        before = snapshot(root)
        argv = [*command, "."]
        code, out, err = run(argv)
        check_result(argv, code, out, err)
        after = snapshot(root)
        assert set(after) == set(before), (argv, err)  # no temporary file left, none removed
        for path, (kind, mode, uid, content) in after.items():
            old_kind, old_mode, old_uid, old_content = before[path]
            assert (kind, mode, uid) == (old_kind, old_mode, old_uid), path
            if content != old_content:
                assert kind == stat.S_IFREG and path.endswith((b".c", b".h")), path
        # Standard input, and `secl rule` with whatever name.
        argv = ["check", "--stdin-filename", "sub/in.bpf.c", "--output-format", "json"]
        code, out, err = run(argv, stdin=data)
        check_result(argv, code, out, err)
        argv = ["rule", rule] if rule else ["rule", "--all"]
        code, out, err = run(argv)
        check_result(argv, code, out, err)
        assert snapshot(root) == after
