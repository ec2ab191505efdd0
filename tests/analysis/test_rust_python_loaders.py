"""Rust and Python loaders judged by their library's rules, end to end: small projects of our
own, each written for one behaviour of libbpf-rs, aya, redbpf or BCC seen in public code."""

from __future__ import annotations

from tests.analysis.test_loaders import codes, loaders, write

KPROBES = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/probe")
int probe_entry(void *ctx)
{
	return 0;
}

SEC("kprobe/probe_ret")
int probe_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

BUILD_RS = """use libbpf_cargo::SkeletonBuilder;
fn main() {
    SkeletonBuilder::new()
        .source("src/bpf/probe.bpf.c")
        .build_and_generate(std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("probe.skel.rs"))
        .unwrap();
}
"""

# The object comes from a helper this file cannot follow (a skeleton kept in an Option); the
# programs are found by name in `Object::progs_mut()`, libbpf-rs 0.24+'s iterator.
ATTACH_TYPE_RS = """mod probe { include!(concat!(env!("OUT_DIR"), "/probe.skel.rs")); }
use probe::*;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

fn init(storage: &mut Storage) -> anyhow::Result<()> {
    let open = storage.open_object_mut();
    open.progs_mut()
        .find(|p| p.name() == "probe_entry")
        .unwrap()
        .set_attach_type(libbpf_rs::ProgramAttachType::KprobeMulti);
    open.progs_mut()
        .find(|p| p.name() == "probe_exit")
        .unwrap()
        .set_attach_type(libbpf_rs::ProgramAttachType::TraceUprobeMulti);
    Ok(())
}
"""


def test_libbpf_rs_attach_type_the_upgrade_also_gives_is_no_secl207(tmp_path):
    write(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "p"\n[dependencies]\nlibbpf-rs = "0.26"\n',
            "build.rs": BUILD_RS,
            "src/bpf/probe.bpf.c": KPROBES,
            "src/main.rs": ATTACH_TYPE_RS,
        },
    )
    assert loaders(tmp_path)["probe_entry"]["kind"] == "libbpf-rs"
    # probe_entry keeps BPF_TRACE_KPROBE_MULTI under the upgrade; probe_exit was set to a
    # uprobe-multi type that the upgrade overwrites.
    assert codes(tmp_path) == [("src/bpf/probe.bpf.c", "SECL207", 10)]


# redbpf's own ELF reader (redbpf/src/lib.rs `ModuleBuilder::parse`) takes `socketfilter/`,
# `xdp/NAME` and legacy `maps/NAME` sections that libbpf rejects or reads otherwise.
REDBPF_C = """#include <linux/bpf.h>
#define SEC(name) __attribute__((section(name), used))

struct bpf_map_def SEC("maps/events") events = { .type = 4 };

SEC("socketfilter/filter")
int filter(void *skb)
{
	return 0;
}

SEC("xdp/pass")
int pass(void *ctx)
{
	return 2;
}

char _license[] SEC("license") = "GPL";
"""

REDBPF_MAIN = """use redbpf::load::Loader;
fn main() {
    let mut loaded = Loader::load(include_bytes!("../bpf/probe.o")).expect("load");
    for x in loaded.xdps_mut() { x.attach_xdp("eth0", redbpf::xdp::Flags::default()).unwrap(); }
}
"""


def test_redbpf_loaded_source_is_off_libbpf_rules(tmp_path):
    write(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "p"\n[dependencies]\nredbpf = "2.3"\n',
            "bpf/probe.c": REDBPF_C,
            "src/main.rs": REDBPF_MAIN,
        },
    )
    loader = loaders(tmp_path)["filter"]
    assert loader["kind"] == "other"
    assert loader["evidence"][0]["value"] == "redbpf Loader::load probe.o"
    assert codes(tmp_path) == []
    assert {c for _, c, _ in codes(tmp_path, "--select", "ALL")} == {"SECL005"}


def test_redbpf_crate_dependency_decides_a_source_no_loader_names(tmp_path):
    # The bytes come from the caller: the crate's direct dependency on redbpf tells the library.
    main = (
        "use redbpf::load::Loader;\npub fn start(bytes: &[u8]) { Loader::load(bytes).unwrap(); }\n"
    )
    write(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "p"\n[dependencies]\nredbpf = "2.3"\n',
            "bpf/probe.c": REDBPF_C,
            "src/lib.rs": main,
        },
    )
    assert loaders(tmp_path)["filter"]["kind"] == "other"
    assert codes(tmp_path) == []


def test_without_redbpf_the_same_source_is_judged_by_libbpf(tmp_path):
    write(tmp_path, {"bpf/probe.c": REDBPF_C})
    assert loaders(tmp_path)["filter"]["kind"] == "libbpf-assumed"
    assert ("bpf/probe.c", "SECL102", 12) in codes(tmp_path)  # libbpf's `xdp` is exact


# libbpf-rs's `attach_kprobe*` has no offset: a loader that needs one calls libbpf itself.
RAW_ATTACH_RS = """mod probe { include!(concat!(env!("OUT_DIR"), "/probe.skel.rs")); }
use probe::*;
use libbpf_rs::libbpf_sys;

fn attach(skel: &ProbeSkel, line_offset: u64) {
    let mut opts = libbpf_sys::bpf_kprobe_opts::default();
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_kprobe_opts>() as _;
    opts.offset = line_offset;
    unsafe {
        libbpf_sys::bpf_program__attach_kprobe_opts(
            skel.progs.probe_entry.as_libbpf_object().as_ptr(),
            c"tcp_sendmsg".as_ptr(),
            &opts,
        );
    }
    let linked = libbpf_sys::bpf_kprobe_opts {
        attach_mode: libbpf_sys::PROBE_ATTACH_MODE_LINK,
        ..Default::default()
    };
    unsafe {
        libbpf_sys::bpf_program__attach_kprobe_opts(
            skel.progs.probe_exit.as_libbpf_object().as_ptr(), c"tcp_sendmsg".as_ptr(), &linked);
    }
}
"""


def test_libbpf_sys_attach_with_offset_and_link_mode_break_under_the_upgrade(tmp_path):
    write(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "p"\n[dependencies]\nlibbpf-rs = "0.26"\n',
            "build.rs": BUILD_RS,
            "src/bpf/probe.bpf.c": KPROBES,
            "src/main.rs": RAW_ATTACH_RS,
        },
    )
    assert codes(tmp_path) == [
        ("src/bpf/probe.bpf.c", "SECL201", 4),
        ("src/bpf/probe.bpf.c", "SECL202", 10),
    ]


# pylibbpf's `attach_all()` is bpf_program__attach() on every program: libbpf's section rules.
PYLIBBPF_PY = """from pylibbpf import BpfObject
obj = BpfObject("probe.bpf.o")
obj.load()
obj.attach_all()
"""

UPROBE_C = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("uprobe/readline")
int on_readline(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_pylibbpf_loaded_source_is_judged_by_libbpf(tmp_path):
    write(tmp_path, {"tools/probe.bpf.c": UPROBE_C, "tools/run.py": PYLIBBPF_PY})
    loader = loaders(tmp_path)["on_readline"]
    assert loader["kind"] == "libbpf"
    assert loader["evidence"][0]["value"] == "pylibbpf BpfObject(probe.bpf.o)"
    # `uprobe/readline` has no binary path: libbpf's auto-attach refuses it.
    assert codes(tmp_path) == [("tools/probe.bpf.c", "SECL104", 4)]


TWO_UPROBES = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("uprobe/readline")
int by_hand(void *ctx)
{
	return 0;
}

SEC("uprobe/readline")
int by_skeleton(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# bpf_object__attach_skeleton() (libbpf.c) skips a program whose autoattach is off: only
# by_skeleton has its `uprobe/readline` suffix parsed (no binary path: SECL104).
AUTOATTACH_RS = """mod probe { include!(concat!(env!("OUT_DIR"), "/probe.skel.rs")); }
use probe::*;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

fn main() -> anyhow::Result<()> {
    let mut storage = std::mem::MaybeUninit::uninit();
    let mut open = ProbeSkelBuilder::default().open(&mut storage)?;
    open.progs.by_hand.set_autoattach(false);
    let mut skel = open.load()?;
    skel.attach()?;
    let _l = skel.progs.by_hand.attach_uprobe(false, -1, "/bin/bash", 0x1234)?;
    Ok(())
}
"""


def test_libbpf_rs_autoattach_off_keeps_the_skeleton_from_parsing_the_suffix(tmp_path):
    write(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "p"\n[dependencies]\nlibbpf-rs = "0.26"\n',
            "build.rs": BUILD_RS,
            "src/bpf/probe.bpf.c": TWO_UPROBES,
            "src/main.rs": AUTOATTACH_RS,
        },
    )
    assert codes(tmp_path) == [("src/bpf/probe.bpf.c", "SECL104", 10)]
