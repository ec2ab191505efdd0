"""Rust loaders: libbpf-cargo build scripts, libbpf-rs skeletons and objects, aya."""

from __future__ import annotations

from pathlib import Path

import pytest

from secl.loaders import AYA, LIBBPF_RS, OTHER, FileLoaders, LoaderUse
from secl.loaders.rust import (
    cargo_libbpf_prog_dir,
    cargo_lock_versions,
    cargo_toml_versions,
    extract_rust,
    is_rust_loader,
    skeleton_from_type,
    skeleton_of_path,
    skeleton_type_prefix,
)
from secl.parse.loader import LoaderFact

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "loaders"


def read(source: str, path: str = "src/main.rs") -> FileLoaders:
    return extract_rust(path, source.encode())


def facts(found: FileLoaders, kind: str | None = None) -> list[LoaderFact]:
    assert found.facts is not None
    return [f for f in found.facts.facts if kind is None or f.kind == kind]


def progs(found: list[LoaderFact]) -> set[tuple[str, str | None, str | None]]:
    return {
        (f.program.owner.kind, f.program.owner.name, f.program.name) for f in found if f.program
    }


def only_use(found: FileLoaders) -> LoaderUse:
    assert len(found.uses) == 1, found.uses
    return found.uses[0]


# -- prefilter and names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"use libbpf_rs::ObjectBuilder;",
        b"use libbpf_cargo::SkeletonBuilder;",
        b"let b = ProbeSkelBuilder::default();",
        b'include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));',
        b"use aya::Ebpf;",
        b"let bpf = Bpf::load(&data)?;",
        b'include_bytes_aligned!("../probe.o")',
    ],
)
def test_prefilter_accepts_loader_files(text: bytes) -> None:
    assert is_rust_loader(text)


@pytest.mark.parametrize(
    "text", [b'fn main() { println!("hello"); }', b"use tokio::net::TcpListener;", b""]
)
def test_prefilter_rejects_other_rust(text: bytes) -> None:
    assert not is_rust_loader(text)


def test_skeleton_type_names_follow_libbpf_cargo() -> None:
    assert skeleton_type_prefix("probe_kern") == "ProbeKern"
    assert skeleton_type_prefix("tc") == "Tc"
    assert skeleton_from_type("ProbeKern") == "probe_kern"
    assert skeleton_from_type("Runqslower") == "runqslower"
    assert skeleton_of_path("src/bpf/probe.bpf.c") == "probe"
    assert skeleton_of_path("/tmp/x/probe.o") == "probe"


# -- libbpf-cargo build scripts ----------------------------------------------------------

BUILD_CONST = """
use std::env;
use std::path::PathBuf;
use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/runq_slower.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"))
        .join("runq_slower.skel.rs");
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-I", "include"])
        .build_and_generate(&out)
        .unwrap();
}
"""


def test_skeleton_builder_source_through_a_const() -> None:
    use = only_use(read(BUILD_CONST, "build.rs"))
    assert use.kind == LIBBPF_RS
    assert use.sources == ("src/bpf/runq_slower.bpf.c",)
    assert use.skeletons == ("runq_slower",)
    assert use.certain
    assert use.span.start.row == 11


BUILD_VARIABLE = """
use libbpf_cargo::SkeletonBuilder;
fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let mut out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    out.push("renamed.skel.rs");
    let mut builder = libbpf_cargo::SkeletonBuilder::new();
    builder.source(format!("{manifest}/bpf/tracer.bpf.c"));
    builder.obj("objects/tracer_kern.o");
    builder.build_and_generate(out).unwrap();
}
"""


def test_skeleton_builder_methods_on_a_variable() -> None:
    use = only_use(read(BUILD_VARIABLE, "crate/build.rs"))
    # CARGO_MANIFEST_DIR is the build script's directory; `.obj()` names the skeleton
    # (libbpf-cargo gen_single()), the output file name is kept as a second name.
    assert use.sources == ("bpf/tracer.bpf.c",)
    assert use.objects == ("objects/tracer_kern.o",)
    assert use.skeletons == ("tracer_kern", "renamed")


BUILD_LOOP = """
use libbpf_cargo::SkeletonBuilder;
const PROGS: &[&str] = &["alpha", "beta"];
fn build(name: &str, out_dir: &str) {
    SkeletonBuilder::new()
        .source(format!("src/bpf/{}.bpf.c", name))
        .build_and_generate(format!("{out_dir}/{name}.skel.rs"))
        .unwrap();
}
fn main() {
    let out_dir = std::env::var("OUT_DIR").unwrap();
    for name in PROGS {
        build(name, &out_dir);
    }
}
"""


def test_skeleton_builder_in_a_helper_called_over_a_list() -> None:
    use = only_use(read(BUILD_LOOP, "build.rs"))
    assert set(use.sources) == {"src/bpf/alpha.bpf.c", "src/bpf/beta.bpf.c"}
    assert set(use.skeletons) == {"alpha", "beta"}


BUILD_DYNAMIC = """
use libbpf_cargo::SkeletonBuilder;
fn main() {
    for entry in std::fs::read_dir("src/bpf").unwrap() {
        let path = entry.unwrap().path();
        SkeletonBuilder::new().source(&path).build_and_generate(out_for(&path)).unwrap();
    }
}
"""


BUILD_HELPERS = """
use libbpf_cargo::SkeletonBuilder;
const NAME: &str = "kern";
fn source() -> String {
    format!("src/bpf/{}.bpf.c", NAME)
}
fn skeleton_path(name: &str) -> std::path::PathBuf {
    let mut path = std::path::PathBuf::new();
    path.push(std::env::var("OUT_DIR").unwrap());
    path.push(format!("{name}.skel.rs"));
    path
}
fn main() {
    SkeletonBuilder::new().source(source()).build_and_generate(skeleton_path(NAME)).unwrap();
}
"""


def test_skeleton_builder_values_from_helper_functions() -> None:
    use = only_use(read(BUILD_HELPERS, "build.rs"))
    assert use.sources == ("src/bpf/kern.bpf.c",)
    assert use.skeletons == ("kern",)


def test_skeleton_builder_with_unknown_source_is_uncertain() -> None:
    use = only_use(read(BUILD_DYNAMIC, "build.rs"))
    assert use.kind == LIBBPF_RS
    assert use.sources == () and use.skeletons == ()
    assert not use.certain


def test_cargo_libbpf_metadata_prog_dir() -> None:
    manifest = b'[package]\nname = "x"\n[package.metadata.libbpf]\nprog_dir = "bpf"\n'
    assert cargo_libbpf_prog_dir(manifest) == "bpf"
    assert cargo_libbpf_prog_dir(b'[package]\nname = "x"\n') is None


# -- generated skeletons -----------------------------------------------------------------

SKELETON = """
use std::mem::MaybeUninit;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::query::{LinkTypeInfo, PerfEventType};

mod probe {
    include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
}
use probe::*;

const TARGET: &str = "do_unlinkat";

struct App<'a> {
    skel: ProbeSkel<'a>,
}

impl<'a> App<'a> {
    fn watch(&mut self) -> anyhow::Result<()> {
        let link = self.skel.progs.watched.attach_kprobe(false, TARGET)?;
        let info = link.info()?;
        let LinkTypeInfo::PerfEvent(perf) = info.info else { anyhow::bail!("no perf link") };
        // LinkTypeInfo::PerfEvent in a comment is no check
        if let PerfEventType::Kprobe { missed, .. } = perf.event_type {
            assert_eq!(missed, 0);
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let builder = ProbeSkelBuilder::default();
    let mut storage = MaybeUninit::uninit();
    let mut open_skel = builder.open(&mut storage)?;
    open_skel.progs.tail.set_autoload(false);
    open_skel.progs.retyped.set_prog_type(libbpf_rs::ProgramType::Kprobe);
    open_skel.progs.typed.set_attach_type(libbpf_rs::ProgramAttachType::KprobeMulti);
    let mut skel = open_skel.load()?;
    skel.attach()?;
    let _u = skel.progs.uprobed.attach_uprobe(false, -1, "/bin/true", 0x40)?;
    let _p = skel.progs.sampled.attach_perf_event(7)?;
    let _k = skel.progs.opts.attach_kprobe_with_opts(true, "vfs_read", libbpf_rs::KprobeOpts {
        cookie: 9,
        ..Default::default()
    })?;
    let _t = skel.progs.traced.attach()?;
    let _ = skel.links.watched.as_ref().map(|l| l.detach());
    Ok(())
}
"""


def test_skeleton_use_from_include_with_auto_attach() -> None:
    found = read(SKELETON)
    use = only_use(found)
    assert use.kind == LIBBPF_RS
    assert use.skeletons == ("probe",)
    assert use.auto_attach is True
    assert use.span.start.row == 7
    assert found.facts is not None and "probe" in found.facts.skeletons


def test_skeleton_auto_attach_fact() -> None:
    found = facts(read(SKELETON), "auto-attach")
    assert progs(found) == {("skeleton", "probe", None)}
    assert found[0].span.start.row == 38


def test_skeleton_program_attach_calls() -> None:
    found = facts(read(SKELETON), "attach")
    assert progs(found) == {
        ("skeleton", "probe", name) for name in ("watched", "uprobed", "sampled", "opts", "traced")
    }
    by_name = {f.program.name: f for f in found if f.program}
    assert by_name["watched"].targets == ("do_unlinkat",)
    assert by_name["watched"].function == "watch"
    assert by_name["opts"].targets == ("vfs_read",)
    assert by_name["opts"].value == "bpf_program__attach_kprobe_opts"
    assert by_name["traced"].value == "bpf_program__attach"
    assert by_name["uprobed"].value == "bpf_program__attach_uprobe"


def test_uprobe_function_offset_and_kprobe_opts_are_no_offset_evidence() -> None:
    # KprobeOpts carries a cookie only; a uprobe func_offset is never SECL201 evidence.
    found = read(SKELETON)
    assert not facts(found, "attach-offset")
    assert not facts(found, "attach-address")
    assert not facts(found, "attach-mode")


def test_perf_event_attach() -> None:
    found = facts(read(SKELETON), "perf-event")
    assert progs(found) == {("skeleton", "probe", "sampled")}
    assert found[0].api == "Program::attach_perf_event"


def test_program_setters() -> None:
    found = read(SKELETON)
    assert progs(facts(found, "autoload")) == {("skeleton", "probe", "tail")}
    assert [f.value for f in facts(found, "autoload")] == ["false"]
    assert progs(facts(found, "set-type")) == {("skeleton", "probe", "retyped")}
    assert facts(found, "autoattach") == []
    expected = facts(found, "expected-attach-type")
    assert progs(expected) == {("skeleton", "probe", "typed")}
    # The kernel constant behind libbpf-rs's variant (libbpf-rs/src/program.rs
    # `ProgramAttachType::KprobeMulti`), as a C loader writes it.
    assert expected[0].value == "BPF_TRACE_KPROBE_MULTI"


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("libbpf_rs::ProgramAttachType::KprobeMulti", "BPF_TRACE_KPROBE_MULTI"),
        ("ProgramAttachType::TraceUprobeMulti", "BPF_TRACE_UPROBE_MULTI"),
        ("ProgramAttachType::CgroupInetIngress", "BPF_CGROUP_INET_INGRESS"),
        ("attach_type_from_config()", "attach_type_from_config()"),
    ],
)
def test_attach_type_variants_are_the_kernel_constants(written: str, value: str) -> None:
    source = f"""
fn main() {{
    let mut open_skel = ProbeSkelBuilder::default().open(&mut storage).unwrap();
    open_skel.progs.typed.set_attach_type({written});
}}
"""
    assert [f.value for f in facts(read(source), "expected-attach-type")] == [value]


def test_link_info_matched_against_a_perf_event_link() -> None:
    found = read(SKELETON)
    info = facts(found, "link-info")
    assert progs(info) == {("skeleton", "probe", "watched")}
    assert sorted((f.span.start.row, f.value) for f in info) == [
        (21, "BPF_LINK_TYPE_PERF_EVENT"),
        (23, "BPF_PERF_EVENT_KPROBE"),
    ]
    assert all(f.call is not None and f.call.start.row == 20 for f in info)
    missed = facts(found, "missed-count")
    assert progs(missed) == {("skeleton", "probe", "watched")}


def test_link_info_without_a_perf_check_is_no_fact() -> None:
    source = SKELETON.replace("LinkTypeInfo::PerfEvent(perf)", "LinkTypeInfo::Tracing(perf)")
    source = source.replace("PerfEventType::Kprobe", "Other::Kprobe")
    assert not facts(read(source), "link-info")


def test_link_info_that_also_handles_multi_links() -> None:
    source = """
use libbpf_rs::query::LinkTypeInfo;
include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
fn check(skel: &ProbeSkel) {
    let link = skel.progs.k.attach().unwrap();
    match link.info().unwrap().info {
        LinkTypeInfo::PerfEvent(_) => {}
        LinkTypeInfo::KprobeMulti(_) => {}
        _ => panic!(),
    }
}
"""
    found = read(source)
    assert progs(facts(found, "link-info")) == {("skeleton", "probe", "k")}
    multi = facts(found, "link-info-multi")
    assert [f.value for f in multi] == ["kprobe"]


def test_links_field_link_info() -> None:
    source = """
use libbpf_rs::query::LinkTypeInfo;
include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));
fn check(skel: &ProbeSkel) {
    let info = skel.links.k.as_ref().unwrap().info().unwrap();
    assert!(matches!(info.info, LinkTypeInfo::PerfEvent(_)));
}
"""
    assert progs(facts(read(source), "link-info")) == {("skeleton", "probe", "k")}


def test_other_attach_methods_are_ignored() -> None:
    # A TcHook's attach() and aya's attach() are not libbpf-rs programs.
    source = """
use libbpf_rs::TcHookBuilder;
include!(concat!(env!("OUT_DIR"), "/tc.skel.rs"));
fn main() {
    let skel = TcSkelBuilder::default().open(&mut o).unwrap().load().unwrap();
    let mut builder = TcHookBuilder::new(skel.progs.handle_tc.as_fd());
    let mut egress = builder.hook(TC_EGRESS);
    egress.attach().unwrap();
}
"""
    found = read(source)
    assert not facts(found)
    assert only_use(found).skeletons == ("tc",)


OLD_SKELETON = """
use libbpf_rs::skel::*;
#[path = "bpf/.output/probe_kern.skel.rs"]
mod probe_kern_skel;
use probe_kern_skel::*;

fn main() -> libbpf_rs::Result<()> {
    let builder = ProbeKernSkelBuilder::default();
    let mut open = builder.open()?;
    open.progs_mut().tail().set_autoload(false)?;
    let mut skel = open.load()?;
    let _l = skel.progs_mut().handle_exec().attach()?;
    let n = skel.progs().count();
    Ok(())
}
"""


def test_pre_0_24_skeleton_accessors() -> None:
    found = read(OLD_SKELETON)
    assert progs(facts(found, "autoload")) == {("skeleton", "probe_kern", "tail")}
    assert progs(facts(found, "attach")) == {("skeleton", "probe_kern", "handle_exec")}
    use = only_use(found)
    assert use.skeletons == ("probe_kern",)
    assert use.auto_attach is None  # attach() here is one program's, not the skeleton's


def test_skeleton_builder_type_names_the_skeleton_without_an_include() -> None:
    source = """
use libbpf_rs::skel::SkelBuilder;
use crate::bpf::TcpCaSkelBuilder;
fn open() { let b = TcpCaSkelBuilder::default(); }
"""
    use = only_use(read(source))
    assert use.skeletons == ("tcp_ca",)
    assert use.value == "TcpCaSkelBuilder"


def test_skeleton_passed_by_type_from_another_file() -> None:
    source = """
use libbpf_rs::Link;
pub fn attach_all(skel: &mut crate::bpf::RunqslowerSkel<'_>) -> Link {
    skel.progs.handle_switch.attach().unwrap()
}
"""
    found = read(source)
    assert progs(facts(found, "attach")) == {("skeleton", "runqslower", "handle_switch")}
    assert found.facts is not None and found.facts.skeletons == frozenset({"runqslower"})


def test_unresolved_receiver_names_the_program_only() -> None:
    source = """
use libbpf_rs::Program;
fn attach(thing: &Thing) { thing.inner().progs.handler.attach_kprobe(false, "x").unwrap(); }
"""
    found = facts(read(source), "attach")
    assert progs(found) == {("unknown", None, "handler")}


def test_program_found_in_an_unresolved_objects_programs() -> None:
    # libbpf-rs 0.24+: `Object::progs_mut()` is an iterator (libbpf-rs/src/object.rs), so
    # `.find(|p| p.name() == "x")` on it is program x even when the object comes from a helper
    # this file cannot follow (a skeleton's `.object()` kept in an Option).
    source = """
use libbpf_rs::skel::Skel;
fn attach(&mut self) -> Result<()> {
    let obj = match &mut self.skel { Some(skel) => skel.object(), _ => bail!("no") };
    let prog = obj
        .progs_mut()
        .find(|p| p.name() == "probe_entry")
        .ok_or_else(|| anyhow!("none"))?;
    self.links.push(prog.attach_kprobe(false, "tcp_connect")?);
    let every = obj.progs().find(|p| p.name().len() > 3).unwrap();
    every.attach()?;
    Ok(())
}
"""
    found = facts(read(source), "attach")
    # The program with no name told (`every`) is too vague to keep for an unknown object.
    assert progs(found) == {("unknown", None, "probe_entry")}


def test_manifest_dir_include_in_src() -> None:
    source = """
mod tc {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bpf/tc.skel.rs"));
}
use tc::TcSkelBuilder;
"""
    use = only_use(read(source, "crate/src/main.rs"))
    assert use.skeletons == ("tc",)


def test_generated_skeleton_files_are_not_read() -> None:
    found = extract_rust("src/bpf/probe.skel.rs", b"pub struct ProbeSkelBuilder {}")
    assert found.uses == [] and found.facts is None


# -- libbpf-rs objects -------------------------------------------------------------------

OBJECT = """
use libbpf_rs::ObjectBuilder;
const OBJ: &str = "bpf/probe.bpf.o";
fn main() -> libbpf_rs::Result<()> {
    let mut builder = ObjectBuilder::default();
    let open = builder.debug(true).open_file(OBJ)?;
    let mut obj = open.load()?;
    for prog in obj.progs_mut() {
        if prog.name() == "entry" {
            prog.attach_kprobe(false, "do_sys_open")?;
        }
    }
    let exit = obj.progs_mut().find(|p| p.name() == OsStr::new("exit")).unwrap();
    exit.attach_kprobe(true, "do_sys_open")?;
    obj.progs_mut().for_each(|p| { p.attach().unwrap(); });
    Ok(())
}
"""


def test_object_open_file() -> None:
    found = read(OBJECT)
    use = only_use(found)
    assert use.kind == LIBBPF_RS
    assert use.objects == ("bpf/probe.bpf.o",)
    assert use.value == "ObjectBuilder::open_file probe.bpf.o"
    assert found.facts is not None and found.facts.objects == frozenset({"bpf/probe.bpf.o"})


def test_object_programs_by_iteration() -> None:
    found = facts(read(OBJECT), "attach")
    assert progs(found) == {
        ("object", "bpf/probe.bpf.o", "entry"),
        ("object", "bpf/probe.bpf.o", "exit"),
        ("object", "bpf/probe.bpf.o", None),
    }


OBJECT_MEMORY = """
use libbpf_rs::ObjectBuilder;
static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe.bpf.o"));
fn open(data: &[u8]) -> libbpf_rs::Result<libbpf_rs::OpenObject> {
    ObjectBuilder::default().open_memory(data)
}
fn main() -> libbpf_rs::Result<()> {
    let mut open = open(PROBE)?;
    if let Some(p) = open.prog_mut("tail") {
        p.set_autoload(false)?;
    }
    let obj = open.load()?;
    let prog = obj.prog("handler").unwrap();
    let _l = prog.attach()?;
    Ok(())
}
"""


def test_object_open_memory_through_a_static_and_a_parameter() -> None:
    found = read(OBJECT_MEMORY)
    use = only_use(found)
    assert use.objects == ("probe.bpf.o",)  # OUT_DIR: only the base name is known


def test_pre_0_22_open_memory_takes_a_name_first() -> None:
    # libbpf-rs before 0.22: `ObjectBuilder::open_memory(name, mem)`.
    source = """
use libbpf_rs::ObjectBuilder;
fn open() -> libbpf_rs::Result<libbpf_rs::OpenObject> {
    ObjectBuilder::default().debug(true).open_memory("probe", include_bytes!("../bpf/probe.bpf.o"))
}
"""
    assert only_use(read(source)).objects == ("../bpf/probe.bpf.o",)


def test_pre_0_24_object_programs_by_name_through_a_helper() -> None:
    found = read(OBJECT_MEMORY)
    # `open(..)` is followed into the helper's last expression, its parameter to the callers.
    assert progs(facts(found, "attach")) == {("object", "probe.bpf.o", "handler")}
    assert progs(facts(found, "autoload")) == {("object", "probe.bpf.o", "tail")}


def test_libbpf_sys_prog_handler() -> None:
    source = """
use libbpf_rs::libbpf_sys;
fn main() {
    unsafe { libbpf_sys::libbpf_register_prog_handler(c"perf_event/".as_ptr(), 0, 0, &opts) };
}
"""
    found = facts(read(source), "prog-handler")
    assert [(f.program, f.value) for f in found] == [(None, "perf_event/")]


# -- aya ---------------------------------------------------------------------------------

AYA_SOURCE = """
use aya::{include_bytes_aligned, Ebpf, EbpfLoader, Bpf, BpfLoader};

static EMBEDDED: &[u8] = aya::include_bytes_aligned!("../../target/bpfel/release/tracer");

fn main() -> anyhow::Result<()> {
    let a = Ebpf::load(include_bytes_aligned!(concat!(env!("OUT_DIR"), "/alpha.o")))?;
    let b = Ebpf::load_file("objects/beta.o")?;
    let c = EbpfLoader::new().set_global("PID", &pid, true).load(EMBEDDED)?;
    let data = std::fs::read("gamma.bpf.o")?;
    let d = Bpf::load(&data)?;
    let mut loader = BpfLoader::new();
    loader.btf(None);
    let e = loader.load_file(std::path::Path::new("delta.o"))?;
    let f = aya::Ebpf::load(&runtime_bytes())?;
    let mut kprobe: &mut aya::programs::KProbe = a.program_mut("x").unwrap().try_into()?;
    kprobe.load()?;
    kprobe.attach("do_unlinkat", 0)?;
    Ok(())
}
"""


def test_aya_loads() -> None:
    found = read(AYA_SOURCE)
    uses = found.uses
    assert all(u.kind == AYA and u.auto_attach is False for u in uses)
    assert [(u.span.start.row, u.objects, u.certain) for u in uses] == [
        (7, ("alpha.o",), True),
        (8, ("objects/beta.o",), True),
        (9, ("../../target/bpfel/release/tracer",), True),
        (11, ("gamma.bpf.o",), True),
        (14, ("delta.o",), True),
        (15, (), False),
    ]
    assert found.facts is None  # aya is not libbpf: no program facts


def test_aya_embedded_object_loaded_elsewhere() -> None:
    source = """
pub static PROBE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/probe"));
"""
    use = only_use(read(source))
    assert use.kind == AYA
    assert use.objects == ("probe",)  # a Rust (aya-ebpf) crate's output: no `.o`
    assert use.value == "include_bytes_aligned! probe"


# -- bad input ---------------------------------------------------------------------------


REDBPF_SOURCE = """
use redbpf::load::Loader;
use redbpf::Module;
static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe.o"));
fn main() {
    let mut loaded = Loader::load(PROBE).expect("load");
    let other = Loader::load_file("target/bpf/other.elf").expect("load");
    let module = redbpf::Module::parse(&std::fs::read("third.o").unwrap()).unwrap();
    for kprobe in loaded.kprobes_mut() {
        kprobe.attach_kprobe(&kprobe.name(), 0).unwrap();
    }
}
"""


def test_redbpf_loads_are_another_loader() -> None:
    found = read(REDBPF_SOURCE)
    assert is_rust_loader(REDBPF_SOURCE.encode())
    assert [(u.kind, u.objects, u.value, u.auto_attach) for u in found.uses] == [
        (OTHER, ("probe.o",), "redbpf Loader::load probe.o", False),
        (OTHER, ("target/bpf/other.elf",), "redbpf Loader::load_file other.elf", False),
        (OTHER, ("third.o",), "redbpf Module::parse third.o", False),
    ]
    # redbpf's `attach_kprobe(name, offset)` is not libbpf-rs's: no facts for libbpf.
    assert found.facts is None


def test_loader_and_module_of_other_crates_are_not_redbpf() -> None:
    source = """
use my_crate::Loader;
fn main() { let m = Module::parse(&data); let l = Loader::load("x.o"); }
"""
    assert read(source).uses == []


def test_file_that_does_not_parse() -> None:
    source = """
use aya::Ebpf;
fn main() {
    let bpf = Ebpf::load_file("ok.o")?;
}
fn broken( {
    let x = ;
"""
    found = read(source)
    assert found.problem is not None and "\\n" not in found.problem
    assert "line" in found.problem
    assert [u.objects for u in found.uses] == [("ok.o",)]


def test_binary_garbage_does_not_raise() -> None:
    found = extract_rust("src/x.rs", b"\xff\xfe aya \x00\x01 Ebpf::load(")
    assert isinstance(found, FileLoaders)


# -- Cargo manifests ---------------------------------------------------------------------


def test_cargo_lock_versions() -> None:
    lock = (FIXTURES / "libbpf-rs" / "Cargo.lock").read_bytes()
    versions = cargo_lock_versions(lock)
    assert versions["libbpf-rs"] == "0.26.2"
    assert versions["libbpf-cargo"] == "0.26.2"
    assert versions["libbpf-sys"] == "1.7.0+v1.7.0"


def test_cargo_lock_highest_of_several_and_bad_input() -> None:
    lock = b"""
[[package]]
name = "aya"
version = "0.12.0"

[[package]]
name = "aya"
version = "0.13.1"
"""
    assert cargo_lock_versions(lock) == {"aya": "0.13.1"}
    assert cargo_lock_versions(b"not [ toml") == {}


def _tomllib_packages(text: str) -> list | None:
    import tomllib

    try:
        return tomllib.loads(text).get("package", [])
    except tomllib.TOMLDecodeError:
        return None


LOCK_SHAPES = [
    '[[package]]\nname = "aya"\nversion = "0.13.1"\n',
    'version = 4\n\n[[package]]\nname = "a"\nversion = "1"\ndependencies = [\n "b",\n]\n',
    'version = 04\n[[package]]\nname = "aya"\nversion = "1"\n',  # leading zero
    '[[package]]\nname = "aya"\nname = "x"\nversion = "1"\n',  # a key twice
    'package = "x"\n[[package]]\nname = "aya"\nversion = "1"\n',  # key, then table
    '[[package]]\nname = "a"\nversion = "1"\nd = [\n "b"\n "c",\n]\n',  # no comma
    '[[package]]\nname = "a"\nversion = "1"\nd = [\n "b",\n',  # never closed
    '[[package]]\r\nname = "aya"\r\nversion = "1"\r\n',  # CRLF
    '[[package]]\nname = "a\\u0079a"\nversion = "1"\n',  # an escape
    '[[package]]\nname = "a\ta"\nversion = "1"\n',  # a tab in a string
    '# comment \t with tab\n[[package]]\nname = "aya"\nversion = "1"\n',
    '[[package]]\nname = "aya" # trailing\nversion = "1"\n',
    '[metadata]\nx = "y"\n[[package]]\nname = "aya"\nversion = "1"\n',
    "[[package]]\nname = 'aya'\nversion = \"1\"\n",
    '[[package]]\n  name = "aya"\nversion = "1"\n',
    '[[package]]\nname = "aya"\nversion = "1"\nd = []\n',
    "",
    "\n\n",
]


@pytest.mark.parametrize("text", LOCK_SHAPES)
def test_cargo_lock_fast_reading_is_tomls(text: str) -> None:
    from secl.loaders.rust import _cargo_lock_packages

    fast = _cargo_lock_packages(text)
    assert fast is None or fast == _tomllib_packages(text)


def test_cargo_lock_fast_reading_is_tomls_on_damaged_locks() -> None:
    """Every line of a real lock file cut, doubled or dropped: what the fast reading takes
    is what TOML reads, and the rest goes to TOML."""
    from secl.loaders.rust import _cargo_lock_packages

    lines = (FIXTURES / "libbpf-rs" / "Cargo.lock").read_text().split("\n")[:120]
    fast_count = 0
    for i, line in enumerate(lines):
        for damaged in (
            lines[:i] + lines[i + 1 :],
            lines[: i + 1] + lines[i:],
            [*lines[:i], line[: len(line) // 2], *lines[i + 1 :]],
        ):
            text = "\n".join(damaged)
            fast = _cargo_lock_packages(text)
            fast_count += fast is not None
            assert fast is None or fast == _tomllib_packages(text), (i, line)
    assert fast_count > 30  # dropping a line often leaves a lock Cargo could have written
    whole = "\n".join(lines)
    assert _cargo_lock_packages(whole) == _tomllib_packages(whole)


def test_cargo_toml_versions() -> None:
    manifest = b"""
[dependencies]
libbpf-rs = "0.24"
aya = { version = "^0.13.1", features = ["async_tokio"] }
renamed = { package = "libbpf-cargo", version = "=0.23.3" }
local = { path = "../local" }
shared = { workspace = true }

[target.'cfg(target_os = "linux")'.build-dependencies]
libbpf-sys = "~1.4"
"""
    assert cargo_toml_versions(manifest) == {
        "libbpf-rs": "0.24",
        "aya": "0.13.1",
        "libbpf-cargo": "0.23.3",
        "libbpf-sys": "1.4",
    }


# -- fixture projects --------------------------------------------------------------------


def test_libbpf_rs_fixture() -> None:
    root = FIXTURES / "libbpf-rs"
    build = extract_rust("build.rs", (root / "build.rs").read_bytes())
    assert only_use(build).sources == ("src/bpf/probe.bpf.c",)
    assert only_use(build).skeletons == ("probe",)
    main = extract_rust("src/main.rs", (root / "src" / "main.rs").read_bytes())
    assert main.problem is None
    assert only_use(main).skeletons == ("probe",) and only_use(main).auto_attach is True
    assert progs(facts(main, "link-info")) == {("skeleton", "probe", "on_rmdir")}
    assert progs(facts(main, "auto-attach")) == {("skeleton", "probe", None)}
    assert progs(facts(main, "attach")) == {
        ("skeleton", "probe", "on_rmdir"),
        ("skeleton", "probe", "on_main"),
    }
    assert not facts(main, "attach-offset")


def test_aya_fixture() -> None:
    root = FIXTURES / "aya"
    main = extract_rust("src/main.rs", (root / "src" / "main.rs").read_bytes())
    use = only_use(main)
    assert (use.kind, use.objects, use.auto_attach) == (AYA, ("probe.bpf.o",), False)
    assert cargo_lock_versions((root / "Cargo.lock").read_bytes())["aya"] == "0.13.1"


# -- libbpf called directly through libbpf-sys --------------------------------------------

RAW_KPROBE = """
use libbpf_rs::libbpf_sys;
use std::ptr;

fn attach_line(skel: &ProbeSkel, offset: u64) -> *mut libbpf_sys::bpf_link {
    let mut opts = libbpf_sys::bpf_kprobe_opts::default();
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_kprobe_opts>() as u64;
    opts.offset = offset;
    unsafe {
        libbpf_sys::bpf_program__attach_kprobe_opts(
            skel.progs.on_line.as_libbpf_object().as_ptr(),
            c"tcp_sendmsg".as_ptr(),
            &opts as *const libbpf_sys::bpf_kprobe_opts,
        )
    }
}

fn attach_by_address(skel: &ProbeSkel, addr: u64) {
    let opts = libbpf_sys::bpf_kprobe_opts { offset: addr as _, ..Default::default() };
    unsafe {
        libbpf_sys::bpf_program__attach_kprobe_opts(
            skel.progs.by_addr.as_libbpf_object().as_ptr(), ptr::null(), &opts);
    }
}

fn attach_linked(skel: &ProbeSkel) {
    let zero = libbpf_sys::bpf_kprobe_opts {
        offset: 0,
        attach_mode: libbpf_sys::PROBE_ATTACH_MODE_LINK,
        ..Default::default()
    };
    unsafe {
        libbpf_sys::bpf_program__attach_kprobe_opts(
            skel.progs.linked.as_libbpf_object().as_ptr(), c"vfs_read".as_ptr(), &zero);
        libbpf_sys::bpf_program__attach_kprobe(
            skel.progs.plain.as_libbpf_object().as_ptr(), false, c"vfs_write".as_ptr());
    }
}
"""


def test_libbpf_sys_kprobe_attach_with_offset_address_and_mode() -> None:
    found = read(RAW_KPROBE)
    assert progs(facts(found, "attach")) == {
        ("skeleton", "probe", "on_line"),
        ("skeleton", "probe", "by_addr"),
        ("skeleton", "probe", "linked"),
        ("skeleton", "probe", "plain"),
    }
    offsets = {(f.program.name, f.value) for f in facts(found, "attach-offset") if f.program}
    assert offsets == {("on_line", "offset"), ("by_addr", "addr as _")}  # 0 is no offset
    assert progs(facts(found, "attach-address")) == {("skeleton", "probe", "by_addr")}
    modes = [(f.program.name, f.value) for f in facts(found, "attach-mode") if f.program]
    assert modes == [("linked", "PROBE_ATTACH_MODE_LINK")]
    targets = {f.program.name: f.targets for f in facts(found, "attach") if f.program}
    assert targets["plain"] == ("vfs_write",) and targets["by_addr"] == ()


def test_libbpf_sys_offset_stored_after_the_call_does_not_count() -> None:
    source = """
use libbpf_rs::libbpf_sys;
fn attach(skel: &ProbeSkel) {
    let mut opts = libbpf_sys::bpf_kprobe_opts::default();
    unsafe { libbpf_sys::bpf_program__attach_kprobe_opts(
        skel.progs.p.as_libbpf_object().as_ptr(), c"f".as_ptr(), &opts) };
    opts.offset = 0x10;
}
"""
    found = read(source)
    assert progs(facts(found, "attach")) == {("skeleton", "probe", "p")}
    assert facts(found, "attach-offset") == []


def test_set_autoattach_fact() -> None:
    source = """
fn main() {
    let mut open_skel = ProbeSkelBuilder::default().open(&mut storage).unwrap();
    open_skel.progs.by_hand.set_autoattach(false);
}
"""
    found = facts(read(source), "autoattach")
    assert [(f.program.name, f.value, f.api) for f in found if f.program] == [
        ("by_hand", "false", "OpenProgramMut::set_autoattach")
    ]
