"""Go loader extraction (secl.loaders.golang) on inline sources and the fixture projects."""

from __future__ import annotations

import os
from textwrap import dedent

import pytest

from secl.loaders import CILIUM, GOBPF, LIBBPF, LIBBPFGO, OTHER, FileLoaders, LoaderUse
from secl.loaders.golang import extract_go, go_mod_versions, is_go_loader
from secl.parse.loader import LoaderFact, ObjectRef, ProgramRef

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures", "loaders")

LIBBPFGO_HEADER = 'package main\n\nimport bpf "github.com/aquasecurity/libbpfgo"\n\n'
CILIUM_HEADER = 'package main\n\nimport "github.com/cilium/ebpf"\n\n'


def go(source: str, path: str = "loader/main.go") -> FileLoaders:
    data = dedent(source).encode()
    assert is_go_loader(data), "the prefilter must let every test source through"
    return extract_go(path, data)


def libbpfgo(body: str, imports: str = "") -> FileLoaders:
    header = LIBBPFGO_HEADER
    if imports:
        header = header.replace("import bpf", f"import {imports}\nimport bpf")
    return go(header + dedent(body))


def only_use(found: FileLoaders) -> LoaderUse:
    assert len(found.uses) == 1, found.uses
    return found.uses[0]


def facts(found: FileLoaders, *kinds: str) -> list[LoaderFact]:
    assert found.facts is not None
    return [f for f in found.facts.facts if not kinds or f.kind in kinds]


def obj(name: str) -> ObjectRef:
    return ObjectRef("object", name)


def prog(object_name: str, name: str | None) -> ProgramRef:
    return ProgramRef(obj(object_name), name)


# -- prefilter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'import "github.com/cilium/ebpf"',
        'import bpf "github.com/aquasecurity/libbpfgo"',
        'import "github.com/iovisor/gobpf/bcc"',
        "//go:generate go tool bpf2go probe probe.c",
        "C.libbpf_register_prog_handler(nil, 0, 0, nil)",
        "C.bpf_object__open_file(name, nil)",
        "//go:embed probe.bpf.o\nvar probe []byte",
        'import manager "github.com/DataDog/ebpf-manager"',
        'import manager "github.com/gojue/ebpfmanager"',
        'import "github.com/DataDog/ebpf/manager"',
    ],
)
def test_prefilter_takes_files_that_name_a_library(text: str) -> None:
    assert is_go_loader(f"package main\n\n{text}\n".encode())


@pytest.mark.parametrize(
    "text",
    [
        'import "fmt"\n\nfunc main() { fmt.Println("hello") }',
        "//go:embed index.html\nvar page string",
        'import "github.com/cilium/cilium/pkg/bpf"',  # not cilium/ebpf itself
    ],
)
def test_prefilter_skips_other_go_files(text: str) -> None:
    assert not is_go_loader(f"package main\n\n{text}\n".encode())


# -- bpf2go go:generate ----------------------------------------------------------------------


def bpf2go(line: str, path: str = "pkg/gen.go") -> LoaderUse:
    return only_use(go(f"package probe\n\n{line}\n", path))


def test_go_run_bpf2go_with_flags_and_cflags() -> None:
    use = bpf2go(
        "//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "
        '"-O2 -g -Wall" -type event -tags linux Probe bpf/probe.bpf.c -- -I../headers -DX=1'
    )
    assert use.kind == CILIUM
    assert use.sources == ("bpf/probe.bpf.c",)
    assert use.idents == ("Probe",)
    # cmd/bpf2go: stem = lower-cased ident, default targets bpfel,bpfeb
    assert use.objects == ("probe_bpfel.o", "probe_bpfeb.o")
    assert use.auto_attach is False
    assert use.certain
    assert use.value == "bpf2go Probe bpf/probe.bpf.c"
    assert use.span.start.row == 3 and use.span.start.column == 1


def test_go_tool_and_plain_bpf2go_and_version() -> None:
    assert bpf2go("//go:generate go tool bpf2go -target bpf probe probe.c").objects == (
        "probe_bpf.o",
    )
    plain = bpf2go("//go:generate bpf2go -no-strip -output-stem out probe probe.c")
    assert plain.objects == ("out_bpfel.o", "out_bpfeb.o")
    assert plain.idents == ("probe", "out")
    pinned = bpf2go("//go:generate go run -mod=mod github.com/cilium/ebpf/cmd/bpf2go@v0.12.3 x x.c")
    assert pinned.value == "bpf2go@v0.12.3 x x.c"
    assert pinned.sources == ("x.c",)


def test_bpf2go_arch_targets_output_dir_and_equals_flags() -> None:
    use = bpf2go("//go:generate bpf2go -target=amd64,bpfeb -output-dir gen Probe probe.c")
    # gen/target.go: Suffix() `x86_bpfel` since v0.16.0, ObsoleteSuffix() `bpfel_x86` before
    assert use.objects == ("gen/probe_x86_bpfel.o", "gen/probe_bpfel_x86.o", "gen/probe_bpfeb.o")


def test_bpf2go_in_test_file_gets_test_suffix() -> None:
    use = bpf2go("//go:generate bpf2go -target bpfel probe probe.c", path="pkg/x_test.go")
    assert use.objects == ("probe_bpfel_test.o",)


def test_bpf2go_command_alias_and_go_generate_variables() -> None:
    found = go(
        """\
        package probe

        //go:generate -command gen go run github.com/cilium/ebpf/cmd/bpf2go
        //go:generate gen -cc $BPF_CLANG -target bpfel $GOPACKAGE probe.c
        //go:generate gen -target bpfel x ${SRC}
        //go:generate echo bpf2go is not run here
        """
    )
    known, unknown = found.uses
    assert known.idents == ("probe",) and known.objects == ("probe_bpfel.o",)
    assert known.certain  # $BPF_CLANG is only the compiler
    assert unknown.sources == () and unknown.idents == ("x",) and not unknown.certain


def test_bpf2go_named_by_an_environment_variable() -> None:
    """`$BPF2GO` is the bpf2go binary a Makefile exports to go generate: bpf2go's arguments
    follow it; a variable of another name is not taken for bpf2go."""
    found = go(
        """\
        package probe

        //go:generate $BPF2GO -cc $BPF_CLANG -cflags $BPF_CFLAGS -target amd64 bpf ../bpf/t.c -- -I../bpf
        //go:generate ${GO_BPF2GO} -target bpfel Other ../bpf/o.c
        //go:generate $TOOL -target bpfel nope ../bpf/n.c
        """
    )
    first, second = found.uses
    assert first.kind == CILIUM and first.sources == ("../bpf/t.c",) and first.idents == ("bpf",)
    assert first.objects == ("bpf_x86_bpfel.o", "bpf_bpfel_x86.o") and first.certain
    assert second.idents == ("Other",) and second.sources == ("../bpf/o.c",)
    # a file holding nothing else is still read (the upper-case name is a prefilter hint)
    assert is_go_loader(b"package p\n\n//go:generate $BPF2GO x x.c\n")


def test_bpf2go_flag_from_the_environment_before_more_flags() -> None:
    """`"$BPF_STRIP_FLAG"` expands to `-no-strip` or `-strip=...`: a flag, since more flags
    follow it; the identifier and source come after."""
    use = bpf2go(
        '//go:generate go run -mod=mod github.com/cilium/ebpf/cmd/bpf2go -cc "$BPF_CLANG" '
        '"$BPF_STRIP_FLAG" -cflags "$BPF_CFLAGS" -target "$BPF_TARGET" -type ev bpf kern/t.c '
        "-- -I./headers"
    )
    assert use.idents == ("bpf",) and use.sources == ("kern/t.c",) and use.certain
    assert use.objects == ()  # the targets come from the environment
    last = bpf2go('//go:generate bpf2go -cc clang "$IDENT" probe.c')
    assert last.idents == () and last.sources == ("probe.c",) and not last.certain


def test_go_generate_must_start_the_line() -> None:
    found = go("package probe\n\n  //go:generate bpf2go probe probe.c\n")
    assert found.uses == []


# -- cilium/ebpf -----------------------------------------------------------------------------


def test_generated_file_embeds_its_object() -> None:
    found = go(
        """\
        // Code generated by bpf2go; DO NOT EDIT.

        package main

        import (
            "bytes"
            _ "embed"

            "github.com/cilium/ebpf"
        )

        func loadKprobe() (*ebpf.CollectionSpec, error) {
            reader := bytes.NewReader(_KprobeBytes)
            return ebpf.LoadCollectionSpecFromReader(reader)
        }

        //go:embed kprobe_x86_bpfel.o
        var _KprobeBytes []byte
        """,
        "pkg/kprobe_x86_bpfel.go",
    )
    use = only_use(found)
    assert use.kind == CILIUM
    assert use.objects == ("kprobe_x86_bpfel.o",)
    assert use.idents == ("kprobe",)
    assert use.auto_attach is False and use.certain
    assert found.facts is None  # cilium/ebpf is not libbpf


def test_exported_identifier_of_generated_file() -> None:
    found = go(
        CILIUM_HEADER
        + dedent(
            """\
            // Code generated by bpf2go; DO NOT EDIT.
            func LoadTracer() (*ebpf.CollectionSpec, error) {
                return ebpf.LoadCollectionSpecFromReader(bytes.NewReader(_TracerBytes))
            }

            //go:embed tracer_bpfel.o
            var _TracerBytes []byte
            """
        ).replace("// Code generated", "// x")
    )
    # Not a generated file (no header at the top): the object, but no identifier.
    assert only_use(found).idents == ()
    header = "// Code generated by bpf2go; DO NOT EDIT.\n\n"
    generated = go(
        header
        + CILIUM_HEADER
        + "func LoadTracer() (*ebpf.CollectionSpec, error) {\n"
        + "\treturn ebpf.LoadCollectionSpecFromReader(bytes.NewReader(_TracerBytes))\n}\n\n"
        + "//go:embed tracer_bpfel.o\nvar _TracerBytes []byte\n"
    )
    assert only_use(generated).idents == ("Tracer",)


def test_load_collection_spec_from_constant_path() -> None:
    found = go(
        """\
        package main

        import (
            "path/filepath"

            "github.com/cilium/ebpf"
        )

        const dir = "build"

        func main() {
            spec, _ := ebpf.LoadCollectionSpec(filepath.Join(dir, "probe.o"))
            coll, _ := ebpf.NewCollection(spec)
            _ = coll
        }
        """
    )
    use = only_use(found)  # NewCollection of a spec loaded here adds no second use
    assert use.objects == ("build/probe.o",)
    assert use.value == "LoadCollectionSpec build/probe.o"


def test_load_collection_spec_from_a_reader_over_an_asset() -> None:
    """`assets.Asset("probe.o")` of go-bindata (another package): the `.o` name that flows
    into the reader is the object; a reader of unknown bytes names none."""
    found = go(
        """\
        package main

        import (
            "bytes"

            "github.com/cilium/ebpf"
            "example.com/x/assets"
        )

        func load(debug bool) {
            name := "probe.o"
            if debug {
                name = "probe-debug.o"
            }
            buf, _ := assets.Asset(name)
            ebpf.LoadCollectionSpecFromReader(bytes.NewReader(buf))
        }

        func other(buf []byte) {
            ebpf.LoadCollectionSpecFromReader(bytes.NewReader(buf))
        }
        """
    )
    named, unknown = found.uses
    assert named.kind == CILIUM and named.objects == ("probe-debug.o", "probe.o")
    assert named.certain and named.idents == ()
    assert unknown.objects == () and not unknown.certain


def test_new_collection_of_unknown_spec_and_bpf2go_objects_calls() -> None:
    found = go(
        CILIUM_HEADER
        + dedent(
            """\
            func run(spec *ebpf.CollectionSpec) {
                coll, _ := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{})
                s2, _ := loadProbe()
                c2, _ := ebpf.NewCollection(s2)
                var objs bpfObjects
                _ = loadBpfObjects(&objs, nil)
                _, _ = coll, c2
            }
            """
        )
    )
    unknown, from_load, from_objects = found.uses
    assert unknown.kind == CILIUM and not unknown.certain
    assert unknown.objects == () and unknown.idents == ()
    assert from_load.idents == ("probe",) and not from_load.certain
    assert from_objects.idents == ("bpf",) and from_objects.value == "loadBpfObjects (bpf2go bpf)"


# -- ebpf-manager ----------------------------------------------------------------------------


def manager_file(body: str, module: str = "github.com/DataDog/ebpf-manager") -> FileLoaders:
    header = f"""\
        package probe

        import (
            "bytes"

            manager "{module}"

            "example.com/x/assets"
        )

        """
    return go(dedent(header) + dedent(body))


@pytest.mark.parametrize(
    "module",
    [
        "github.com/DataDog/ebpf-manager",
        "github.com/gojue/ebpfmanager",
        "github.com/ehids/ebpfmanager",
        "github.com/DataDog/ebpf/manager",
    ],
)
def test_ebpf_manager_init_through_an_asset_call(module: str) -> None:
    """ecapture's pattern: the object name reaches the reader only through calls of other
    packages (`assets.Asset`, a method defined elsewhere)."""
    found = manager_file(
        """        type Probe struct {
            m *manager.Manager
        }

        func (p *Probe) Start() error {
            name := p.Base.GetBPFName("bytecode/bash_kern.o")
            buf, err := assets.Asset(name)
            if err != nil {
                return err
            }
            return p.m.InitWithOptions(bytes.NewReader(buf), manager.Options{})
        }
        """,
        module,
    )
    use = only_use(found)
    assert use.kind == CILIUM
    assert use.objects == ("bytecode/bash_kern.o",)
    assert use.value == "ebpf-manager InitWithOptions bytecode/bash_kern.o"
    assert use.auto_attach is False and use.certain
    assert found.facts is None  # not libbpf


def test_ebpf_manager_init_follows_helpers_of_the_file() -> None:
    found = manager_file(
        """        func (p *Probe) objectName(base string) string {
            if p.core {
                return base[:len(base)-2] + "_core.o"
            }
            return base
        }

        func (p *Probe) bytecode() ([]byte, error) {
            file := "bytecode/zsh_kern.o"
            if p.debug {
                file = "bytecode/zsh_debug.o"
            }
            return assets.Asset(p.objectName(file))
        }

        func (p *Probe) Start(m *manager.Manager) error {
            code, err := p.bytecode()
            if err != nil {
                return err
            }
            if err := m.LoadELF(bytes.NewReader(code)); err != nil {
                return err
            }
            return m.Init(nil)
        }
        """
    )
    load, init = found.uses
    # a bare suffix written in the helper (`_core.o`) is no object name
    assert load.objects == ("bytecode/zsh_debug.o", "bytecode/zsh_kern.o")
    assert load.value.startswith("ebpf-manager LoadELF ")
    assert init.objects == () and not init.certain and init.value == "ebpf-manager Init ?"


def test_ebpf_manager_reader_of_another_package_and_embedded_object() -> None:
    found = manager_file(
        """        //go:embed probe.o
        var probe []byte

        func start(dir string) error {
            buf, err := bytecode.GetReader(dir, "tracer.o")
            if err != nil {
                return err
            }
            m := &manager.Manager{}
            if err := m.InitWithOptions(buf, manager.Options{}); err != nil {
                return err
            }
            other := manager.Manager{}
            return other.Init(bytes.NewReader(probe))
        }
        """
    )
    tracer, embedded = found.uses
    assert tracer.objects == ("tracer.o",)
    assert embedded.objects == ("probe.o",)


def test_ebpf_manager_look_alikes_are_not_loaders() -> None:
    found = manager_file(
        """        type settings struct{ verbose bool }

        type Probe struct {
            config *settings
            mgr    *manager.Manager
        }

        func (p *Probe) Start(buf []byte) error {
            p.config.Init(bytes.NewReader(buf))    // the field's type is no Manager
            cfg := &settings{}
            cfg.Init(bytes.NewReader(buf))         // nor the literal's
            assets.Init(bytes.NewReader(buf))      // a package's function
            p.mgr.InitWithOptions(bytes.NewReader(buf)) // not the manager's arity
            return nil
        }
        """
    )
    assert found.uses == []
    # Without ebpf-manager imported, `m.InitWithOptions(r, o)` is anybody's method.
    plain = go(
        CILIUM_HEADER + "func f(m *M, r R) { m.InitWithOptions(r, nil) }\n",
    )
    assert plain.uses == []


# -- libbpfgo: opening objects ---------------------------------------------------------------


def test_new_module_from_file_follows_constants_and_join() -> None:
    found = libbpfgo(
        """\
        const (
            dir  = "dist"
            name = "probe.bpf.o"
        )

        var path = filepath.Join(dir, name)

        func main() {
            m, _ := bpf.NewModuleFromFile(path)
            _ = m
        }
        """,
        imports='"path/filepath"',
    )
    use = only_use(found)
    assert use.kind == LIBBPFGO
    assert use.objects == ("dist/probe.bpf.o",)
    assert use.value == "NewModuleFromFile dist/probe.bpf.o"
    assert use.certain and use.auto_attach is None
    assert found.facts is not None and found.facts.objects == frozenset({"dist/probe.bpf.o"})


def test_new_module_args_and_buffers() -> None:
    found = libbpfgo(
        """\
        //go:embed build/embedded.bpf.o
        var embedded []byte

        func open() {
            args := bpf.NewModuleArgs{BPFObjPath: "args.bpf.o", BTFObjPath: "/sys/kernel/btf"}
            a, _ := bpf.NewModuleFromFileArgs(args)
            b, _ := bpf.NewModuleFromBuffer(embedded, "embedded.bpf.o")
            c, _ := bpf.NewModuleFromBufferArgs(bpf.NewModuleArgs{
                BPFObjBuff: embedded,
                BPFObjName: "named.bpf.o",
            })
            _, _, _ = a, b, c
        }
        """
    )
    a, b, c = found.uses
    assert a.objects == ("args.bpf.o",)
    assert b.objects == ("build/embedded.bpf.o", "embedded.bpf.o")
    assert c.objects == ("build/embedded.bpf.o", "named.bpf.o")


def test_libbpfgo_open_through_a_wrapper_of_the_same_name() -> None:
    """An interface kept for mocks wraps libbpfgo's `NewModuleFromBufferArgs`: the argument's
    type (libbpfgo's NewModuleArgs) says which library opens it; a look-alike with another
    argument type is nothing."""
    found = libbpfgo(
        """\
        type impl interface {
            NewModuleFromBufferArgs(*bpf.NewModuleArgs) (*bpf.Module, error)
        }

        type recorder struct{ impl }

        func (r *recorder) load(obj []byte) {
            r.NewModuleFromBufferArgs(&bpf.NewModuleArgs{
                BPFObjBuff: obj,
                BPFObjName: "recorder.bpf.o",
            })
            r.NewModuleFromFileArgs(bpf.NewModuleArgs{BPFObjPath: "other.bpf.o"})
            r.NewModuleFromBufferArgs(&options{Name: "fake.bpf.o"})
            r.NewModuleFromFileArgs(other.NewModuleArgs{BPFObjPath: "fake2.bpf.o"})
        }
        """
    )
    assert [(u.kind, u.objects) for u in found.uses] == [
        (LIBBPFGO, ("recorder.bpf.o",)),
        (LIBBPFGO, ("other.bpf.o",)),
    ]


def test_embed_fs_read_file_and_os_read_file() -> None:
    found = libbpfgo(
        """\
        //go:embed bpf/*.o
        var objects embed.FS

        func open() {
            data, _ := objects.ReadFile("bpf/probe.bpf.o")
            m, _ := bpf.NewModuleFromBuffer(data, "probe")
            raw, _ := os.ReadFile("/usr/lib/app/other.bpf.o")
            n, _ := bpf.NewModuleFromBuffer(raw, "other")
            _, _ = m, n
        }
        """,
        imports='"os"',
    )
    first, second = found.uses
    assert first.objects == ("bpf/probe.bpf.o", "probe")
    assert second.objects == ("/usr/lib/app/other.bpf.o", "other")


def test_unknown_object_is_still_a_use() -> None:
    found = libbpfgo(
        """\
        func open(cfg Config) {
            m, _ := bpf.NewModuleFromFile(cfg.ObjectPath)
            _ = m
        }
        """
    )
    use = only_use(found)
    assert use.kind == LIBBPFGO and use.objects == () and not use.certain
    assert use.value == "NewModuleFromFile ?"


def test_libbpfgo_under_its_old_import_path() -> None:
    """libbpfgo lived in tracee's repository before its own: the same library."""
    found = go(
        """\
        package main

        import bpf "github.com/aquasecurity/tracee/libbpfgo"

        func main() {
            m, _ := bpf.NewModuleFromFile("hello.bpf.o")
            p, _ := m.GetProgram("hello")
            p.AttachKprobeOffset(0xffffffff81000000)
        }
        """
    )
    use = only_use(found)
    assert use.kind == LIBBPFGO and use.objects == ("hello.bpf.o",)
    assert [f.kind for f in facts(found, "attach-address")] == ["attach-address"]


def test_dot_import_of_libbpfgo() -> None:
    found = go(
        """\
        package main

        import . "github.com/aquasecurity/libbpfgo"

        func main() {
            m, _ := NewModuleFromFile("dot.bpf.o")
            p, _ := m.GetProgram("kp")
            p.AttachKprobe("do_sys_open")
        }
        """
    )
    assert only_use(found).objects == ("dot.bpf.o",)
    assert [f.program for f in facts(found, "attach")] == [prog("dot.bpf.o", "kp")]


# -- libbpfgo: program facts -----------------------------------------------------------------


def attach_file(calls: str) -> FileLoaders:
    return libbpfgo(
        "func main() {\n"
        '\tm, _ := bpf.NewModuleFromFile("probe.bpf.o")\n'
        '\tp, _ := m.GetProgram("prog")\n' + calls + "}\n"
    )


def test_attach_kprobe_names_its_target() -> None:
    found = attach_file('\tp.AttachKprobe("do_unlinkat")\n\tp.AttachKretprobe("do_exit")\n')
    first, second = facts(found)
    assert first.kind == "attach" and first.program == prog("probe.bpf.o", "prog")
    assert first.api == "AttachKprobe"
    assert first.value == "bpf_program__attach_kprobe_opts"
    assert first.targets == ("do_unlinkat",)
    assert first.function == "main"
    assert first.span.start.row == 8
    assert second.api == "AttachKretprobe" and second.targets == ("do_exit",)
    assert only_use(found).auto_attach is False  # attached by hand


def test_attach_kprobe_offset_is_an_attach_by_address() -> None:
    found = attach_file("\tp.AttachKprobeOffset(0xffffffff81234560)\n")
    attach, offset, address = facts(found)
    assert attach.kind == "attach" and attach.api == "AttachKprobeOffset"
    assert attach.targets == ()
    assert offset.kind == "attach-offset" and address.kind == "attach-address"
    for fact in (offset, address):
        assert fact.value == 0xFFFFFFFF81234560
        assert fact.program == prog("probe.bpf.o", "prog")
        assert fact.call == attach.span
        assert fact.api == "AttachKprobeOffset"


def test_attach_kprobe_offset_computed_at_run_time_keeps_its_text() -> None:
    found = attach_file("\tp.AttachKretprobeOnOffset(lookup(sym))\n")
    offset, address = facts(found, "attach-offset", "attach-address")
    assert offset.value == address.value == "lookup(sym)"
    assert offset.span.start.column == 28  # the argument, not the call


def test_attach_method_value_called_later() -> None:
    found = attach_file(
        "\tattach := p.AttachKprobeOffset\n"
        "\tfor _, address := range addresses {\n"
        "\t\tattach(address)\n"
        "\t}\n"
    )
    assert [(f.kind, f.value) for f in facts(found)] == [
        ("attach", "bpf_program__attach_kprobe_opts"),
        ("attach-offset", "p.AttachKprobeOffset"),
        ("attach-address", "p.AttachKprobeOffset"),
    ]


def test_attach_kprobe_offset_zero_is_no_offset() -> None:
    found = attach_file("\tp.AttachKprobeOffset(0)\n")
    assert [f.kind for f in facts(found)] == ["attach"]


def test_uprobe_offset_is_never_offset_evidence() -> None:
    found = attach_file(
        '\tp.AttachUprobe(-1, "/bin/bash", 0x4f0)\n'
        '\tp.AttachURetprobe(-1, "/bin/bash", 0x4f0)\n'
        '\tp.AttachUprobeMulti(-1, "/bin/bash", offsets, nil)\n'
    )
    found_facts = facts(found)
    assert [f.kind for f in found_facts] == ["attach", "attach", "attach"]
    assert [f.value for f in found_facts] == [
        "bpf_program__attach_uprobe",
        "bpf_program__attach_uprobe",
        "bpf_program__attach_uprobe_multi",
    ]


def test_attach_generic_is_the_section_attach() -> None:
    found = attach_file("\tp.AttachGeneric()\n")
    (fact,) = facts(found)
    assert fact.kind == "attach" and fact.api == "AttachGeneric"
    assert fact.value == "bpf_program__attach"
    assert only_use(found).auto_attach is True


def test_attach_programs_auto_attaches_every_program() -> None:
    found = attach_file("\tm.AttachPrograms()\n")
    (fact,) = facts(found)
    assert fact.kind == "auto-attach"
    assert fact.program == prog("probe.bpf.o", None)
    assert fact.api == "AttachPrograms"
    assert only_use(found).auto_attach is True


def test_attach_generic_on_unknown_program_marks_every_use() -> None:
    found = libbpfgo(
        """\
        func main() {
            m, _ := bpf.NewModuleFromFile("probe.bpf.o")
            _ = m
        }

        func attachAll(p *bpf.BPFProg) {
            p.AttachGeneric()
        }
        """
    )
    assert only_use(found).auto_attach is True
    assert facts(found) == []


def test_setters() -> None:
    found = attach_file(
        "\tp.SetExpectedAttachType(bpf.BPFAttachTypeTraceKprobeMulti)\n"
        "\tp.SetAttachType(bpf.BPFAttachTypeTraceFentry)\n"
        "\tp.SetType(bpf.BPFProgTypeKprobe)\n"
        "\tp.SetProgramType(bpf.BPFProgTypeTracing)\n"
        "\tp.SetAutoload(false)\n"
    )
    assert [(f.kind, f.value, f.api) for f in facts(found)] == [
        ("expected-attach-type", "bpf.BPFAttachTypeTraceKprobeMulti", "SetExpectedAttachType"),
        ("expected-attach-type", "bpf.BPFAttachTypeTraceFentry", "SetAttachType"),
        ("set-type", "bpf.BPFProgTypeKprobe", "SetType"),
        ("set-type", "bpf.BPFProgTypeTracing", "SetProgramType"),
        ("autoload", "false", "SetAutoload"),
    ]


def test_attach_perf_event() -> None:
    found = attach_file("\tp.AttachPerfEvent(fd)\n")
    assert [(f.kind, f.api) for f in facts(found)] == [
        ("attach", "AttachPerfEvent"),
        ("perf-event", "AttachPerfEvent"),
    ]


def test_values_through_parameters_of_helpers() -> None:
    found = libbpfgo(
        """\
        func attach(m *bpf.Module, name, symbol string) error {
            p, err := m.GetProgram(name)
            if err != nil {
                return err
            }
            _, err = p.AttachKprobe(symbol)
            return err
        }

        func main() {
            m, _ := bpf.NewModuleFromFile("probe.bpf.o")
            attach(m, "open", "do_sys_open")
            attach(m, "close", "close_fd")
        }
        """
    )
    found_facts = facts(found)
    assert sorted(str(f.program.name) for f in found_facts if f.program) == ["close", "open"]
    assert {f.function for f in found_facts} == {"attach"}
    # Each call of the helper gives its own program its own target (was: every call's
    # targets for every program).
    assert {(f.program.name, f.targets) for f in found_facts if f.program} == {
        ("open", ("do_sys_open",)),
        ("close", ("close_fd",)),
    }


def test_range_over_pairs_keeps_each_target_with_its_program() -> None:
    found = libbpfgo(
        """\
        var probes = []struct {
            prog, symbol string
        }{
            {"kp_open", "do_sys_open"},
            {prog: "kp_close", symbol: "close_fd"},
        }

        func main() {
            m, _ := bpf.NewModuleFromFile("probe.bpf.o")
            for _, probe := range probes {
                p, _ := m.GetProgram(probe.prog)
                p.AttachKprobe(probe.symbol)
            }
            for name, symbol := range map[string]string{"kp_exit": "do_exit"} {
                p, _ := m.GetProgram(name)
                p.AttachKretprobe(symbol)
            }
        }
        """
    )
    pairs = {(f.program.name, f.targets) for f in facts(found) if f.program}
    assert pairs == {
        ("kp_open", ("do_sys_open",)),
        ("kp_close", ("close_fd",)),
        ("kp_exit", ("do_exit",)),
    }


def test_names_declared_in_a_block_stay_in_it() -> None:
    found = libbpfgo(
        """\
        func main() {
            m, _ := bpf.NewModuleFromFile("probe.bpf.o")
            {
                p, _ := m.GetProgram("first")
                p.AttachKprobe("a")
            }
            if p, err := m.GetProgram("second"); err == nil {
                p.AttachKretprobe("b")
            }
        }
        """
    )
    assert [(f.program.name, f.api) for f in facts(found) if f.program] == [
        ("first", "AttachKprobe"),
        ("second", "AttachKretprobe"),
    ]


def test_module_in_a_struct_field_and_returned_by_a_helper() -> None:
    found = libbpfgo(
        """\
        type tracer struct {
            module *bpf.Module
        }

        func openModule() (*bpf.Module, error) {
            return bpf.NewModuleFromFile("helper.bpf.o")
        }

        func (t *tracer) init() (err error) {
            t.module, err = openModule()
            return err
        }

        func (t *tracer) attach() {
            p, _ := t.module.GetProgram("kp")
            p.AttachKprobe("vfs_read")
        }
        """
    )
    (fact,) = facts(found)
    assert fact.program == prog("helper.bpf.o", "kp")
    assert fact.function == "attach"


def test_program_of_an_unseen_module_has_an_unknown_owner() -> None:
    found = libbpfgo(
        """\
        func attach(m *bpf.Module) {
            p, _ := m.GetProgram("kp")
            p.AttachKprobe("vfs_read")
        }
        """
    )
    (fact,) = facts(found)
    assert fact.program == ProgramRef(ObjectRef("unknown", None), "kp")
    assert found.uses == []


def test_iterator_programs_are_every_program() -> None:
    found = libbpfgo(
        """\
        func main() {
            m, _ := bpf.NewModuleFromFile("probe.bpf.o")
            it := m.Iterator()
            for {
                p := it.NextProgram()
                if p == nil {
                    break
                }
                p.SetAutoload(false)
            }
        }
        """
    )
    (fact,) = facts(found)
    assert fact.kind == "autoload" and fact.program == prog("probe.bpf.o", None)


def test_strings_and_comments_are_not_calls() -> None:
    found = libbpfgo(
        """\
        // m.GetProgram("x").AttachKprobe("y")
        func main() {
            doc := "p.AttachKprobe(\\"z\\") NewModuleFromFile(\\"a.o\\")"
            _ = doc
        }
        """
    )
    assert found.uses == [] and facts(found) == []


def test_gobpf_attach_is_not_a_libbpfgo_fact() -> None:
    found = go(
        """\
        package main

        import "github.com/iovisor/gobpf/bcc"

        func main() {
            m := bcc.NewModule("int kprobe__f(void *ctx) { return 0; }", nil)
            fd, _ := m.LoadKprobe("kprobe__f")
            m.AttachKprobe("f", fd, -1)
        }
        """
    )
    assert only_use(found).kind == GOBPF
    assert found.facts is None


# -- prog handlers ---------------------------------------------------------------------------


def test_prog_handler_registered_from_go() -> None:
    found = go(
        """\
        package main

        // #include <bpf/libbpf.h>
        import "C"

        func register() {
            sec := C.CString("perf_event/")
            C.libbpf_register_prog_handler(sec, C.BPF_PROG_TYPE_PERF_EVENT, 0, nil)
            C.libbpf_register_prog_handler(nil, C.BPF_PROG_TYPE_KPROBE, 0, nil)
        }
        """
    )
    named, fallback = facts(found)
    assert named.kind == fallback.kind == "prog-handler"
    assert named.program is None and named.value == "perf_event/"
    assert named.api == "libbpf_register_prog_handler" and named.function == "register"
    assert fallback.value is None  # NULL: every name libbpf's table does not know


def test_prog_handler_in_the_cgo_preamble() -> None:
    found = go(
        """\
        package main

        /*
        #include <bpf/libbpf.h>
        #define XDP_PREFIX "xdp/"

        static int setup(void)
        {
            if (libbpf_register_prog_handler(XDP_PREFIX, BPF_PROG_TYPE_XDP, 0, NULL) < 0)
                return -1;
            return libbpf_register_prog_handler(NULL, BPF_PROG_TYPE_KPROBE, 0, NULL);
        }
        */
        import "C"

        func main() { C.setup() }
        """
    )
    named, fallback = facts(found, "prog-handler")
    assert named.value == "xdp/" and named.function == "setup"
    assert named.span.start.row == 9  # in the Go file's own lines
    assert fallback.value is None and fallback.span.start.row == 11


def test_line_comment_preamble_and_a_comment_that_is_not_one() -> None:
    found = go(
        """\
        package main

        // #include <bpf/libbpf.h>
        // static void reg(void) { libbpf_register_prog_handler("tc/", 3, 0, NULL); }
        import "C"
        """
    )
    assert [f.value for f in facts(found, "prog-handler")] == ["tc/"]
    detached = go(
        """\
        package main

        // static void reg(void) { libbpf_register_prog_handler("tc/", 3, 0, NULL); }

        import "C"
        """
    )
    assert detached.facts is None or facts(detached, "prog-handler") == []


def test_libbpf_called_from_go_through_cgo() -> None:
    found = go(
        """\
        package main

        // #include <bpf/libbpf.h>
        import "C"

        func main() {
            obj := C.bpf_object__open_file(C.CString("direct.bpf.o"), nil)
            _ = obj
        }
        """
    )
    use = only_use(found)
    assert use.kind == LIBBPF and use.objects == ("direct.bpf.o",)


# -- gobpf -----------------------------------------------------------------------------------


def test_gobpf_bcc_sources_and_elf_objects() -> None:
    found = go(
        """\
        package main

        import (
            "io/ioutil"
            "path/filepath"
            "strings"

            bpf "github.com/iovisor/gobpf/bcc"
            "github.com/iovisor/gobpf/elf"
        )

        //go:embed embedded.c
        var embedded string

        const inline = `int kprobe__do_sys_open(void *ctx) { return 0; }`

        func main() {
            src, _ := ioutil.ReadFile("probe.c")
            text := strings.ReplaceAll(string(src), "PID", "1")
            a := bpf.NewModule(text, []string{"-w"})
            b := bpf.NewModule(strings.Replace(inline, "X", "1", -1), nil)
            c := bpf.NewModule(embedded, nil)
            d := elf.NewModule("legacy.o")
            e := elf.NewModuleWithLog(filepath.Join("build", "x.o"), 1<<20)
            _, _, _, _, _ = a, b, c, d, e
        }
        """
    )
    a, b, c, d, e = found.uses
    assert {u.kind for u in found.uses} == {GOBPF}
    assert a.sources == ("probe.c",) and a.certain
    assert b.sources == () and b.value == "bcc.NewModule inline C" and b.certain
    assert c.sources == ("embedded.c",)
    assert d.objects == ("legacy.o",)
    assert e.objects == ("build/x.o",)
    assert found.facts is None


def test_gobpf_elf_reader_over_a_bindata_asset() -> None:
    """go-bindata's `Asset("x.o")` is a call the evaluator cannot follow: the `.o` names that
    flow into gobpf's reader are still the objects it opens."""
    found = go(
        """\
        package tracer

        import (
            "bytes"

            bpflib "github.com/iovisor/gobpf/elf"
        )

        func open(withGuess bool) *bpflib.Module {
            name := "trace-main.o"
            if withGuess {
                name = "trace-guess.o"
            }
            buf, _ := Asset(name)
            return bpflib.NewModuleFromReader(bytes.NewReader(buf))
        }

        func unknown(buf []byte) *bpflib.Module {
            return bpflib.NewModuleFromReader(bytes.NewReader(buf))
        }
        """
    )
    named, unknown = found.uses
    assert named.kind == GOBPF and named.objects == ("trace-guess.o", "trace-main.o")
    assert named.certain
    assert unknown.objects == () and not unknown.certain


def test_dropbox_goebpf_load_elf_is_another_loader() -> None:
    """goebpf reads the object with its own ELF reader: kind `other`; `LoadElf` of a file
    that does not import goebpf is nothing."""
    found = go(
        """\
        package kexec

        import "github.com/dropbox/goebpf"

        func load(name string) {
            bpf := goebpf.NewDefaultEbpfSystem()
            bpf.LoadElf("ebpf/kprobe.o")
            bpf.LoadElf(name)
        }
        """
    )
    named, unknown = found.uses
    assert named.kind == OTHER and named.objects == ("ebpf/kprobe.o",) and named.certain
    assert named.value == "goebpf LoadElf ebpf/kprobe.o"
    assert unknown.objects == () and not unknown.certain
    other = go(CILIUM_HEADER + 'func f(s sys) { s.LoadElf("x.o") }\n')
    assert other.uses == []


# -- bad input -------------------------------------------------------------------------------


def test_broken_file_reports_one_line_and_keeps_what_is_certain() -> None:
    found = libbpfgo(
        """\
        func good() {
            m, _ := bpf.NewModuleFromFile("good.bpf.o")
            p, _ := m.GetProgram("a")
            p.AttachKprobe("x")
        }

        func broken() {
            m, _ := bpf.NewModuleFromFile("bad.bpf.o"
            p, _ := m.GetProgram("b")
            p.AttachKprobeOffset(0x10)
        }
        """
    )
    assert found.problem is not None and "\n" not in found.problem
    assert "line 12" in found.problem
    assert [u.objects for u in found.uses] == [("good.bpf.o",)]
    assert [(f.kind, f.program) for f in facts(found)] == [("attach", prog("good.bpf.o", "a"))]


def test_error_away_from_loader_code_is_no_problem() -> None:
    found = libbpfgo(
        """\
        func main() {
            m, _ := bpf.NewModuleFromFile("probe.bpf.o")
            _ = m
        }

        func unrelated() {
            x := (1 +
        }
        """
    )
    assert found.problem is None
    assert only_use(found).objects == ("probe.bpf.o",)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"github.com/cilium/ebpf \xff\xfe\x00 bpf2go",
        b'package main\nimport "github.com/aquasecurity/libbpfgo"\n' + b"(" * 5000,
        b'//go:generate bpf2go "unterminated\n//go:generate bpf2go\n',
    ],
)
def test_never_raises(data: bytes) -> None:
    found = extract_go("bad.go", data)
    assert isinstance(found, FileLoaders)


# -- go.mod ----------------------------------------------------------------------------------


def test_go_mod_versions() -> None:
    data = dedent(
        """\
        module example.com/app // the app

        go 1.22

        require github.com/cilium/ebpf v0.16.0

        require (
            github.com/aquasecurity/libbpfgo v0.8.0-libbpf-1.5 // indirect
            "github.com/iovisor/gobpf" v0.2.0
            golang.org/x/sys v0.20.0
        )

        replace github.com/aquasecurity/libbpfgo => github.com/me/libbpfgo v0.8.1
        replace (
            github.com/iovisor/gobpf v0.2.0 => ../gobpf
            golang.org/x/sys v0.1.0 => golang.org/x/sys v0.2.0
        )
        """
    ).encode()
    assert go_mod_versions(data) == {
        "github.com/cilium/ebpf": "v0.16.0",
        "github.com/aquasecurity/libbpfgo": (
            "v0.8.0-libbpf-1.5 (replaced by github.com/me/libbpfgo v0.8.1)"
        ),
        "github.com/iovisor/gobpf": "v0.2.0 (replaced by ../gobpf)",
        "golang.org/x/sys": "v0.20.0",  # the replace is for another version
    }


def test_go_mod_without_requirements() -> None:
    assert go_mod_versions(b"module example.com/x\n\ngo 1.21\n") == {}


# -- the fixture projects --------------------------------------------------------------------


def fixture(*parts: str) -> FileLoaders:
    path = os.path.join(FIXTURES, *parts)
    with open(path, "rb") as fh:
        data = fh.read()
    assert is_go_loader(data)
    return extract_go(path, data)


def read_fixture(*parts: str) -> bytes:
    with open(os.path.join(FIXTURES, *parts), "rb") as fh:
        return fh.read()


def test_cilium_fixture() -> None:
    generate = only_use(fixture("cilium", "main.go"))
    assert generate.kind == CILIUM
    assert generate.sources == ("socket_probes.bpf.c",)
    assert generate.idents == ("probe",)
    assert "probe_bpfel.o" in generate.objects
    generated = only_use(fixture("cilium", "probe_bpfel.go"))
    assert generated.objects == ("probe_bpfel.o",) and generated.idents == ("probe",)
    versions = go_mod_versions(read_fixture("cilium", "go.mod"))
    assert versions["github.com/cilium/ebpf"] == "v0.16.0"


def test_libbpfgo_fixture() -> None:
    found = fixture("libbpfgo", "main.go")
    use = only_use(found)
    assert use.kind == LIBBPFGO and use.objects == ("unlink.bpf.o",)
    assert use.auto_attach is False
    by_kind = {(f.kind, f.program.name if f.program else None) for f in facts(found)}
    assert ("attach-address", "by_address") in by_kind
    assert ("attach-offset", "by_address") in by_kind
    assert ("attach", "by_name") in by_kind
    assert not any(f.program and f.program.name == "by_name" for f in facts(found, "attach-offset"))
    (handler,) = facts(found, "prog-handler")
    assert handler.value == "perf_event/"
    versions = go_mod_versions(read_fixture("libbpfgo", "go.mod"))
    assert versions["github.com/aquasecurity/libbpfgo"] == "v0.8.0-libbpf-1.5"


def test_gobpf_fixture() -> None:
    found = fixture("gobpf", "main.go")
    bcc, legacy = found.uses
    assert bcc.kind == legacy.kind == GOBPF
    assert bcc.sources == ("opensnoop.c",)
    assert legacy.objects == ("legacy_elf.o",)
    assert go_mod_versions(read_fixture("gobpf", "go.mod")) == {
        "github.com/iovisor/gobpf": "v0.2.0"
    }


def test_every_loader_hint_holds_bpf_for_the_quick_refusal() -> None:
    from secl.loaders.golang import _HINTS, is_go_loader

    assert all(b"bpf" in hint or b"BPF" in hint for hint in _HINTS)
    assert is_go_loader(b"package x\n\n//go:embed probe.o\nvar obj []byte\n")
    assert not is_go_loader(b'package x\n\nimport "fmt"\n')
