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
