"""The auto-upgrade on sections built through macros: the fix edits the literal where it is
spelled, and findings say which configuration they hold for."""

from __future__ import annotations

from pathlib import Path

from secl.analysis.run import run_rules
from secl.api import load
from secl.config import Config
from tests.catalogue_harness import run_example, write_files

LOADER = """#include "probe.skel.h"
int main(void)
{
	struct probe *skel = probe__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 8);
	bpf_program__attach_kprobe_opts(skel->progs.handle_do_unlinkat, "do_unlinkat", &opts);
	return 0;
}
"""


def wrapper(uses: str) -> str:
    return '#define KPROBE(fn) SEC("kprobe/" #fn) int BPF_KPROBE(handle_##fn)\n' + uses


def test_fix_edits_the_define_and_is_safe_for_one_user(tmp_path: Path) -> None:
    src = wrapper("KPROBE(do_unlinkat)\n{\n\treturn 0;\n}\n")
    (finding,) = [
        f
        for f in run_example(tmp_path, {"probe.bpf.c": src, "probe.c": LOADER})
        if f.code == "SECL201"
    ]
    assert finding.program == "handle_do_unlinkat"
    (edit,) = finding.fix.edits
    assert finding.fix.applicability == "safe"
    assert edit.span.start.row == 1 and edit.content == '"kprobe.single/"'


def test_fix_of_a_shared_define_is_unsafe_and_names_the_others(tmp_path: Path) -> None:
    src = wrapper("KPROBE(do_unlinkat)\n{\n\treturn 0;\n}\nKPROBE(vfs_read)\n{\n\treturn 0;\n}\n")
    findings = [
        f
        for f in run_example(tmp_path, {"probe.bpf.c": src, "probe.c": LOADER})
        if f.code.startswith("SECL2")
    ]
    assert [(f.code, f.program) for f in findings] == [("SECL201", "handle_do_unlinkat")]
    fix = findings[0].fix
    assert fix.applicability == "unsafe" and "handle_vfs_read" in fix.message


def test_one_wrapper_line_can_make_several_programs(tmp_path: Path) -> None:
    src = (
        '#define TWO(a, b) SEC("kprobe/" #a) int BPF_KPROBE(a) { return 0; } '
        'SEC("kprobe/" #b) int BPF_KPROBE(b) { return 0; }\n'
        "TWO(do_unlinkat, vfs_read)\n"
    )
    loader = LOADER.replace("handle_do_unlinkat", "do_unlinkat")
    findings = run_example(tmp_path, {"probe.bpf.c": src, "probe.c": loader})
    assert [(f.code, f.program) for f in findings if f.code.startswith("SECL2")] == [
        ("SECL201", "do_unlinkat")
    ]


def test_finding_names_its_configuration(tmp_path: Path) -> None:
    src = (
        '#if USE_MULTI\n#define PROBE_SEC "kprobe.multi/do_unlinkat"\n#else\n'
        '#define PROBE_SEC "kprobe/do_unlinkat"\n#endif\n'
        "SEC(PROBE_SEC)\nint BPF_KPROBE(handle_do_unlinkat)\n{\n\treturn 0;\n}\n"
    )
    files = {"probe.bpf.c": src, "probe.c": LOADER}
    write_files(tmp_path, files)
    for define, expected in (("USE_MULTI=0", ["SECL201"]), ("USE_MULTI=1", [])):
        config = Config(root=str(tmp_path), select=("SECL2",), defines=(define,))
        findings = run_rules(load([str(tmp_path)], config).project)
        assert [f.code for f in findings] == expected
        for f in findings:
            assert "holds for the configuration `!USE_MULTI`" in f.notes
    # with nothing to choose the branch, secl does not guess
    findings = run_example(tmp_path, files)
    assert [f.code for f in findings] == ["SECL001"]
