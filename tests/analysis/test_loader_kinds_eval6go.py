"""Which library loads a source, for the loader layouts of the fifth evaluation round (Go,
Rust and Python loaders, and what C and generated files sit beside them). Each test is a
small project of our own."""

from __future__ import annotations

from pathlib import Path

from tests.analysis.test_loaders import PROBE, codes, loaders, write

GO_MOD = "module example.com/demo\n\ngo 1.22\n\nrequire github.com/cilium/ebpf v0.16.0\n"
LEGACY_MAP = (
    "struct bpf_map_def {{ unsigned int type, key_size, value_size, max_entries; }};\n"
    'struct bpf_map_def SEC("maps") {name} = {{ .type = 1, .key_size = 4, .value_size = 8 }};\n'
)
BCC_SCRIPT = (
    "from bcc import BPF\n\n"
    'b = BPF(src_file="dns.c")\n'
    'fn = b.load_func("catch", BPF.SOCKET_FILTER)\n'
)


def test_a_bcc_script_with_known_c_stands_for_no_other_source(tmp_path: Path) -> None:
    """A Go module whose only loader code is a BCC script compiling its own `dns.c`: a
    source beside it that nothing names is not BCC's (BCC compiles the C it is handed and
    opens no object), so it keeps libbpf's rules. The script's own source stays BCC's."""
    write(
        tmp_path,
        {
            "go.mod": GO_MOD,
            "bpf/src/dns.c": PROBE.format(section="socket"),
            "bpf/src/catch.py": BCC_SCRIPT,
            "bpf/flood/flood.c": PROBE.format(section="kprobe/tcp_v4_rcv").replace(
                "handle", "flood"
            ),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "bcc"
    assert found["flood"]["kind"] == "libbpf-assumed"


def test_a_bcc_script_whose_c_is_unknown_still_stands_for_the_module(tmp_path: Path) -> None:
    """A script compiling a file named only at run time may compile any source of its
    module: the module's sources stay BCC's (uncertain)."""
    write(
        tmp_path,
        {
            "go.mod": GO_MOD,
            "bpf/run.py": "import sys\nfrom bcc import BPF\n\nb = BPF(src_file=sys.argv[1])\n",
            "bpf/probe.c": PROBE.format(section="kprobe/tcp_v4_rcv"),
        },
    )
    assert loaders(tmp_path)["handle"]["kind"] == "bcc"


SAMPLES_LOADER = (
    '#include <stdio.h>\n#include "bpf_load.h"\n\nint main(int argc, char **argv)\n{{\n'
    "\tchar filename[256];\n\n"
    '\tsnprintf(filename, sizeof(filename), "{obj}");\n'
    '\tif (load_bpf_file(filename)) {{\n\t\tprintf("%s", bpf_log_buf);\n\t\treturn 1;\n\t}}\n'
    "\treturn 0;\n}}\n"
)


def test_a_caller_of_the_kernel_samples_loader_is_an_own_elf_loader(tmp_path: Path) -> None:
    """`load_bpf_file()` of the kernel's old samples/bpf/bpf_load.h, with bpf_load.c itself
    out of view (built against the kernel tree): its ELF reader reads the legacy `maps`
    section, so libbpf 1.0's refusal of it is no finding; the loader is `other`."""
    write(
        tmp_path,
        {
            "flood_kern.c": LEGACY_MAP.format(name="counts")
            + PROBE.format(section="xdp").replace("handle", "flood"),
            "flood_user.c": SAMPLES_LOADER.format(obj="flood_kern.o"),
        },
    )
    found = loaders(tmp_path)
    assert found["flood"]["kind"] == "other"
    assert "load_bpf_file" in found["flood"]["evidence"][0]["value"]
    assert codes(tmp_path) == []


def test_a_libbpf_loader_calling_a_function_of_that_name_is_not_the_samples_one(
    tmp_path: Path,
) -> None:
    """A file defining its own `load_bpf_file()` over libbpf is a libbpf loader: the legacy
    `maps` section is then refused (libbpf >= 1.0)."""
    write(
        tmp_path,
        {
            "flood_kern.c": LEGACY_MAP.format(name="counts")
            + PROBE.format(section="xdp").replace("handle", "flood"),
            "flood_user.c": (
                '#include <bpf/libbpf.h>\n#include "bpf_load.h"\n\n'
                "int load_bpf_file(const char *path)\n{\n"
                "\tstruct bpf_object *obj = bpf_object__open_file(path, NULL);\n"
                "\treturn bpf_object__load(obj);\n}\n\n"
                'int main(void)\n{\n\treturn load_bpf_file("flood_kern.o");\n}\n'
            ),
        },
    )
    assert loaders(tmp_path)["flood"]["kind"] == "libbpf"
    assert [c for _f, c, _r in codes(tmp_path)] == ["SECL108"]


CRATE = (
    '[package]\nname = "driver"\nversion = "0.1.0"\nedition = "2021"\n\n'
    '[dependencies]\nlibbpf-rs = "0.23.3"\n\n[build-dependencies]\nlibbpf-cargo = "0.23.3"\n'
)
BUILD_RS = (
    "use libbpf_cargo::SkeletonBuilder;\n\nfn main() {\n"
    '    SkeletonBuilder::new()\n        .source("src/bpf/probe.bpf.c")\n'
    '        .build_and_generate("src/bpf/probe.skel.rs")\n        .unwrap();\n}\n'
)
LIBBPF_HEADER = (
    '#ifndef LIBBPF_API\n#define LIBBPF_API __attribute__((visibility("default")))\n#endif\n'
    "struct bpf_object;\nstruct bpf_link;\n"
    "LIBBPF_API struct bpf_object *bpf_object__open(const char *path);\n"
    "LIBBPF_API struct bpf_link *bpf_link__open(const char *path);\n"
    "static inline int libbpf_major(void)\n{\n\treturn 1;\n}\n"
)


def test_a_vendored_copy_of_libbpf_headers_is_no_loader(tmp_path: Path) -> None:
    """A crate keeping a copy of libbpf's headers beside its BPF code: libbpf.h declares
    `bpf_object__open()`, it opens nothing, so the crate's loaders stay all libbpf-rs and
    the programs of a header its source includes take them."""
    write(
        tmp_path,
        {
            "Cargo.toml": CRATE,
            "build.rs": BUILD_RS,
            "src/main.rs": '#[path = "bpf/probe.skel.rs"]\nmod probe_skel;\nfn main() {}\n',
            "src/bpf/probe.bpf.c": '#include "common/events.h"\nchar LICENSE[] SEC("license") = "GPL";\n',
            "src/bpf/common/events.h": PROBE.format(section="raw_tracepoint/sys_exit"),
            "src/bpf/headers/libbpf.h": LIBBPF_HEADER,
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "libbpf-rs"


SKELETON_HEADER = (
    "/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */\n\n"
    "/* THIS FILE IS AUTOGENERATED BY BPFTOOL! */\n"
    "#ifndef __READLINE_BPF_SKEL_H__\n#define __READLINE_BPF_SKEL_H__\n\n"
    "#include <bpf/libbpf.h>\n\n"
    "struct readline_bpf {\n\tstruct bpf_object_skeleton *skeleton;\n"
    "\tstruct bpf_object *obj;\n\tstruct {\n\t\tstruct bpf_program *printret;\n\t} progs;\n};\n\n"
    "static inline struct readline_bpf *readline_bpf__open_opts(const struct "
    "bpf_object_open_opts *opts)\n{\n\treturn 0;\n}\n\n"
    "static inline struct readline_bpf *readline_bpf__open(void)\n{\n"
    "\treturn readline_bpf__open_opts(NULL);\n}\n\n"
    "static inline int readline_bpf__load(struct readline_bpf *obj)\n{\n"
    "\treturn bpf_object__load_skeleton(obj->skeleton);\n}\n\n"
    "static inline int readline_bpf__attach(struct readline_bpf *obj)\n{\n"
    "\treturn bpf_object__attach_skeleton(obj->skeleton);\n}\n\n#endif\n"
)
MANUAL_LOADER = (
    '#include "readline.skel.h"\n\nint main(void)\n{{\n'
    "\tstruct readline_bpf *obj = readline_bpf__open();\n\n"
    "\tif (readline_bpf__load(obj))\n\t\treturn 1;\n"
    '\tstruct bpf_link *link = bpf_program__attach_uprobe(obj->progs.printret, true, -1, "/bin/bash", 0x1234);\n'
    "{attach}\treturn 0;\n}}\n"
)
READLINE = 'SEC("uretprobe/readline")\nint printret(void *ctx)\n{\n\treturn 0;\n}\n'


def test_a_committed_skeleton_header_attaches_nothing(tmp_path: Path) -> None:
    """bpftool's generated header defines `X__attach()` around bpf_object__attach_skeleton():
    a definition, not a call. A loader that attaches by hand never has libbpf parse the
    `uretprobe/readline` suffix, so it is no finding."""
    write(
        tmp_path,
        {
            "readline.bpf.c": READLINE,
            "readline.skel.h": SKELETON_HEADER,
            "readline.c": MANUAL_LOADER.format(attach=""),
        },
    )
    assert codes(tmp_path) == []


def test_a_loader_calling_the_skeleton_attach_still_breaks(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "readline.bpf.c": READLINE,
            "readline.skel.h": SKELETON_HEADER,
            "readline.c": MANUAL_LOADER.format(attach="\treadline_bpf__attach(obj);\n"),
        },
    )
    assert codes(tmp_path) == [("readline.bpf.c", "SECL104", 1)]


SCX_CRATE = (
    '[package]\nname = "scx_demo"\nversion = "0.1.0"\nedition = "2021"\n\n'
    '[dependencies]\nlibbpf-rs = "0.26"\n\n[build-dependencies]\nscx_cargo = "1.0"\n'
)
SCX_BUILD = (
    "fn main() {{\n    scx_cargo::BpfBuilder::new()\n        .unwrap()\n"
    '        .enable_intf("src/bpf/intf.h", "bpf_intf.rs")\n'
    '        .enable_skel("src/bpf/main.bpf.c", "{name}")\n{more}'
    "        .{build}()\n        .unwrap();\n}}\n"
)


def test_a_sched_ext_build_script_names_its_skeleton(tmp_path: Path) -> None:
    """scx_cargo's `enable_skel(input, name)` then `build()` compiles `input` into skeleton
    `name` for libbpf-rs (scx rust/scx_cargo/src/bpf_builder.rs gen_bpf_skel()): the build
    script is evidence of the source, however the crate's code spells the skeleton."""
    write(
        tmp_path,
        {
            "Cargo.toml": SCX_CRATE,
            "build.rs": SCX_BUILD.format(name="bpf", more="", build="build"),
            "src/main.rs": "mod bpf_skel;\nfn main() {}\n",
            "src/bpf/main.bpf.c": PROBE.format(section="tp/sched/sched_switch"),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "libbpf-rs"
    assert found["handle"]["evidence"][0]["filename"] == "build.rs"
    assert found["handle"]["evidence"][0]["value"] == "BpfBuilder main.bpf.c"


def test_a_sched_ext_linked_build_loads_every_added_source(tmp_path: Path) -> None:
    """`compile_link_gen()` links the `enable_skel` input and every `add_source` into
    skeleton `bpf`: each of those sources is loaded by libbpf-rs, by the build script."""
    write(
        tmp_path,
        {
            "Cargo.toml": SCX_CRATE,
            "build.rs": SCX_BUILD.format(
                name="main",
                more='        .add_source("src/bpf/lib/arena.bpf.c")\n',
                build="compile_link_gen",
            ),
            "src/main.rs": "fn main() {}\n",
            "src/bpf/main.bpf.c": PROBE.format(section="tp/sched/sched_switch"),
            "src/bpf/lib/arena.bpf.c": PROBE.format(section="syscall").replace("handle", "arena"),
        },
    )
    found = loaders(tmp_path)
    for program in ("handle", "arena"):
        assert found[program]["kind"] == "libbpf-rs"
        assert [e["filename"] for e in found[program]["evidence"]] == ["build.rs"]


MACRO_HEADER = (
    "#define __ATTACH_UPROBE(skel, sym_name, prog_name, is_retprobe)  \\\n"
    "\tdo {  \\\n"
    "\t\tLIBBPF_OPTS(bpf_uprobe_opts, uprobe_opts, .retprobe = is_retprobe,  \\\n"
    "\t\t\t    .func_name = #sym_name);  \\\n"
    "\t\tskel->links.prog_name = bpf_program__attach_uprobe_opts(  \\\n"
    '\t\t\tskel->progs.prog_name, -1, "/lib/libc.so.6", 0, &uprobe_opts);  \\\n'
    "\t} while (0)\n"
    "#define ATTACH_URETPROBE(skel, sym_name, prog_name) "
    "__ATTACH_UPROBE(skel, sym_name, prog_name, true)\n"
)
STORED_LOADER = (
    '#include "readline.skel.h"\n#include "helpers.h"\n\nint main(void)\n{{\n'
    "\tstruct readline_bpf *obj = readline_bpf__open_and_load();\n\n"
    "{store}"
    "\treturn readline_bpf__attach(obj);\n}}\n"
)


def test_a_link_stored_before_the_skeleton_attach_is_left_alone(tmp_path: Path) -> None:
    """libbpf's bpf_object__attach_skeleton() skips a program whose link the loader has
    stored (`skel->links.P = ...`): written out, or through a macro of the project and a
    wrapper of it, as bcc's libbpf-tools write `__ATTACH_UPROBE`."""
    for store in (
        "\tobj->links.printret = bpf_program__attach_uprobe(obj->progs.printret, true, -1,"
        ' "/bin/bash", 0);\n',
        "\tATTACH_URETPROBE(obj, readline, printret);\n",
    ):
        write(
            tmp_path,
            {
                "readline.bpf.c": READLINE,
                "helpers.h": MACRO_HEADER,
                "readline.c": STORED_LOADER.format(store=store),
            },
        )
        assert codes(tmp_path, "--no-cache") == []


def test_a_link_stored_for_another_program_does_not_count(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "readline.bpf.c": READLINE,
            "helpers.h": MACRO_HEADER,
            "readline.c": STORED_LOADER.format(
                store="\tATTACH_URETPROBE(obj, readline, other_prog);\n"
            ),
        },
    )
    assert codes(tmp_path) == [("readline.bpf.c", "SECL104", 1)]


def test_a_samples_caller_names_its_object_after_its_program(tmp_path: Path) -> None:
    """`snprintf(f, n, "%s_kern.o", argv[0])` in `pmu_user.c`, with the kernel samples'
    Makefile out of view: samples/bpf builds program `pmu` from `pmu_user.o`, so it opens
    `pmu_kern.o`."""
    write(
        tmp_path,
        {
            "pmu_kern.c": LEGACY_MAP.format(name="counts")
            + PROBE.format(section="perf_event").replace("handle", "on_cycles"),
            "pmu_user.c": SAMPLES_LOADER.format(obj="%s_kern.o").replace(
                '"%s_kern.o")', '"%s_kern.o", argv[0])'
            ),
        },
    )
    found = loaders(tmp_path)
    assert found["on_cycles"]["kind"] == "other"
    first = found["on_cycles"]["evidence"][0]
    assert first["filename"] == "pmu_user.c"
    assert first.get("certain", True)  # the object it names, not a guess for the tree
    assert codes(tmp_path) == []


def test_a_link_stored_after_the_skeleton_attach_is_too_late(tmp_path: Path) -> None:
    """The skeleton attached first, the link stored later by a helper it then calls: libbpf
    has already parsed the section (and failed) by then."""
    loader = (
        '#include "readline.skel.h"\n\n'
        "static int attach_readline(struct readline_bpf *obj)\n{\n"
        "\tobj->links.printret = bpf_program__attach_uprobe(obj->progs.printret, true, -1,"
        ' "/bin/bash", 0);\n\treturn 0;\n}\n\n'
        "int main(void)\n{\n\tstruct readline_bpf *obj = readline_bpf__open_and_load();\n\n"
        "\tif (readline_bpf__attach(obj))\n\t\treturn 1;\n"
        "\treturn attach_readline(obj);\n}\n"
    )
    write(tmp_path, {"readline.bpf.c": READLINE, "readline.c": loader})
    assert codes(tmp_path) == [("readline.bpf.c", "SECL104", 1)]
    write(
        tmp_path,
        {
            "readline.c": loader.replace(
                "\tif (readline_bpf__attach(obj))\n\t\treturn 1;\n\treturn attach_readline(obj);",
                "\tattach_readline(obj);\n\treturn readline_bpf__attach(obj);",
            )
        },
    )
    assert codes(tmp_path, "--no-cache") == []


AWS_GO_MOD = (
    "module example.com/agent\n\ngo 1.22\n\nrequire github.com/aws/aws-ebpf-sdk-go v1.0.10\n"
)
AWS_CLIENT = (
    "package ebpf\n\n"
    'import goelf "github.com/aws/aws-ebpf-sdk-go/pkg/elfparser"\n\n'
    'const INGRESS_BINARY = "tc.ingress.bpf.o"\n\n'
    "type client struct {\n\tsdk goelf.BpfSDKClient\n\tingressBinary string\n}\n\n"
    "func New() *client {\n"
    "\treturn &client{sdk: goelf.New(goelf.Config{}), ingressBinary: INGRESS_BINARY}\n}\n\n"
    "func (c *client) load(file string) error {\n"
    '\t_, _, err := c.sdk.LoadBpfFile(file, "pod")\n\treturn err\n}\n\n'
    "func (c *client) Attach() error {\n\treturn c.load(c.ingressBinary)\n}\n"
)


def test_the_aws_ebpf_sdk_reads_objects_itself(tmp_path: Path) -> None:
    """aws-ebpf-sdk-go's elfparser reads the object with Go's debug/elf: the legacy `maps`
    section and `tc_cls` are its own names, not libbpf's, so nothing of libbpf's applies;
    the object is named through a constant, a struct field and a parameter."""
    write(
        tmp_path,
        {
            "go.mod": AWS_GO_MOD,
            "pkg/ebpf/client.go": AWS_CLIENT,
            "pkg/ebpf/c/tc.ingress.bpf.c": LEGACY_MAP.format(name="ingress_map")
            + PROBE.format(section="tc_cls"),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "other"
    assert found["handle"]["evidence"][0]["value"].startswith("aws-ebpf-sdk-go LoadBpfFile")
    assert codes(tmp_path) == []


def test_an_object_named_dot_elf_links_its_source(tmp_path: Path) -> None:
    """`x.bpf.elf`, as aws-ebpf-sdk-go's users name their objects, is built from `x.bpf.c`:
    linked by name even in a module whose other sources are cilium/ebpf's."""
    write(
        tmp_path,
        {
            "go.mod": AWS_GO_MOD,
            "pkg/ebpf/client.go": AWS_CLIENT.replace(
                "tc.ingress.bpf.o", "tc.ingress.bpf.elf"
            ).replace("c.load(c.ingressBinary)", "c.load(INGRESS_BINARY)"),
            "pkg/ebpf/c/tc.ingress.bpf.c": PROBE.format(section="tc_cls"),
            "pkg/probe/gen.go": (
                "package probe\n\n"
                "//go:generate go run github.com/cilium/ebpf/cmd/bpf2go probe probe.bpf.c\n"
            ),
            "pkg/probe/probe.bpf.c": PROBE.format(section="kprobe/do_unlinkat").replace(
                "handle", "unlink"
            ),
        },
    )
    found = loaders(tmp_path)
    assert found["handle"]["kind"] == "other"
    assert found["handle"]["evidence"][0].get("certain", True)  # linked, not a default
    assert found["unlink"]["kind"] == "cilium-ebpf"
