"""C++ loader code (issue 11): read with tree-sitter-cpp into the facts C loaders give. The
C++ shapes C has no syntax for are read; everything else must read as C reads it, and C++
syntax must never make a fact certain that the C reading would not make."""

from __future__ import annotations

import glob
import os
from dataclasses import replace

import pytest

from secl.parse.loader import LoaderFact, extract_loader_facts, is_loader, syntax_errors
from secl.parse.tree import parse


def facts(source: str, kind: str | None = None, path: str = "loader.cpp") -> list[LoaderFact]:
    found = extract_loader_facts(path, source.encode()).facts
    return [f for f in found if kind is None or f.kind == kind]


def summary(found: list[LoaderFact]) -> set[tuple]:
    return {
        (f.kind, f.program.owner.name if f.program else None,
         f.program.name if f.program else None, f.value, f.certain)
        for f in found
    }  # fmt: skip


def _same_as_c(data: bytes) -> tuple[list[LoaderFact], list[LoaderFact]]:
    """(certain C++ facts the C reading lacks, C facts the C++ reading lacks)."""

    def key(f: LoaderFact) -> LoaderFact:
        return replace(f, path="", certain=True)

    c = extract_loader_facts("loader.c", data).facts
    cpp = extract_loader_facts("loader.cpp", data).facts
    c_keys, cpp_keys = {key(f) for f in c}, {key(f) for f in cpp}
    extra = [f for f in cpp if f.certain and key(f) not in c_keys]
    return extra, [f for f in c if key(f) not in cpp_keys]


def _c_loader_sources() -> list[tuple[str, str]]:
    from tests.analysis import test_c_loaders, test_upgrade
    from tests.parse import test_loader

    out = []
    for module in (test_loader, test_c_loaders, test_upgrade):
        for name, value in sorted(vars(module).items()):
            texts = value.items() if isinstance(value, dict) else [("loader.c", value)]
            for file, text in texts:
                if isinstance(text, str) and file.endswith(".c") and is_loader(text.encode()):
                    out.append((f"{module.__name__}.{name}/{file}", text))
    return out


def test_every_c_loader_of_the_tests_reads_the_same_as_cpp() -> None:
    sources = _c_loader_sources()
    assert len(sources) >= 20
    for name, text in sources:
        extra, missing = _same_as_c(text.encode())
        assert not extra, f"{name}: C++ makes certain what C does not: {extra}"
        assert not missing, f"{name}: C++ loses {missing}"


@pytest.mark.selftests
def test_selftests_loaders_read_as_cpp_never_make_more_certain_facts() -> None:
    root = os.environ.get("SECL_LINUX_SELFTESTS")
    if not root or not os.path.isdir(root):
        pytest.skip("SECL_LINUX_SELFTESTS is not set")
    read = 0
    for path in sorted(glob.glob(os.path.join(root, "prog_tests", "*.c"))):
        with open(path, "rb") as fh:
            data = fh.read()
        if not is_loader(data):
            continue
        read += 1
        extra, _ = _same_as_c(data)
        assert not extra, f"{path}: {extra}"
    assert read >= 20


CLASS_MEMBER = r"""
#include <memory>
#include "probe.skel.h"

namespace app {

class Tracer {
 public:
  int run();

 private:
  std::unique_ptr<probe_bpf, decltype(&probe_bpf::destroy)> skel_{nullptr, probe_bpf::destroy};
  bpf_link *link_ = nullptr;
};

int Tracer::run() {
  skel_.reset(probe_bpf::open_and_load());
  struct bpf_kprobe_opts opts{};
  opts.sz = sizeof(opts);
  opts.offset = 0x10;
  link_ = ::bpf_program__attach_kprobe_opts(this->skel_->progs.entry, "do_unlinkat", &opts);
  bpf_program__set_autoload(skel_->progs.other, false);
  return link_ == nullptr;
}

}  // namespace app
"""


def test_a_skeleton_held_by_a_class_member() -> None:
    assert summary(facts(CLASS_MEMBER)) == {
        ("attach", "probe_bpf", "entry", "bpf_program__attach_kprobe_opts", True),
        ("attach-offset", "probe_bpf", "entry", 0x10, True),
        ("autoload", "probe_bpf", "other", "false", True),
    }
    assert extract_loader_facts("t.cpp", CLASS_MEMBER.encode()).skeletons == {"probe", "probe_bpf"}


def test_bpftool_cpp_skeleton_members_open_and_attach() -> None:
    source = """
#include "probe.skel.h"
int main() {
  auto *skel = probe_bpf::open_and_load();
  probe_bpf::attach(skel);
  // probe_bpf::attach(skel) in a comment is no call
  return 0;
}
"""
    assert summary(facts(source)) == {("auto-attach", "probe_bpf", None, "probe_bpf::attach", True)}


def test_a_class_of_one_s_own_with_open_is_no_skeleton() -> None:
    source = """
struct File { static File *open(const char *p); };
int main() {
  File *f = File::open("x");
  return bpf_program__attach_kprobe(nullptr, false, "f") == nullptr;
}
"""
    assert extract_loader_facts("f.cpp", source.encode()).skeletons == frozenset()


OVERLOADS = r"""
#include "probe.skel.h"

static bpf_link *attach(bpf_program *prog, unsigned long off)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = off);
	return bpf_program__attach_kprobe_opts(prog, "f", &opts);
}

static bpf_link *attach(bpf_program *prog)
{
	return bpf_program__attach_kprobe(prog, false, "f");
}

static bpf_link *attach_at(bpf_program *prog, unsigned long off = 0)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = off);
	return bpf_program__attach_kprobe_opts(prog, "g", &opts);
}

int main()
{
	probe_bpf *skel = probe_bpf__open_and_load();
	attach(skel->progs.one);
	attach(skel->progs.two, 8);
	attach_at(skel->progs.three);
	attach_at(skel->progs.four, static_cast<unsigned long>(0));
	attach_at(skel->progs.five, 1'024);
	return 0;
}
"""


def test_overloads_by_argument_count_defaults_casts_and_digit_separators() -> None:
    assert summary(facts(OVERLOADS, "attach-offset")) == {
        ("attach-offset", "probe_bpf", "two", 8, True),
        ("attach-offset", "probe_bpf", "five", 1024, True),
    }
    assert {f.program.name for f in facts(OVERLOADS, "attach") if f.program} == {
        "one", "two", "three", "four", "five"
    }  # fmt: skip


def test_a_default_declared_elsewhere_is_evidence_never_certain() -> None:
    source = r"""
#include "probe.skel.h"
bool Loader::attachAt(bpf_program *prog, const char *fn, size_t off) {
  LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = off);
  return bpf_program__attach_kprobe_opts(prog, fn, &opts) != nullptr;
}
bool Loader::start() {
  skel_ = probe_bpf__open_and_load();
  return attachAt(skel_->progs.x, "f");
}
"""
    assert summary(facts(source, "attach-offset")) == {
        ("attach-offset", "probe_bpf", "x", "off", False)
    }


def test_a_lambda_runs_when_called_so_outer_stores_are_uncertain() -> None:
    source = r"""
#include "probe.skel.h"
int main() {
  auto *skel = probe_bpf__open_and_load();
  LIBBPF_OPTS(bpf_kprobe_opts, later, .offset = 8);
  auto go = [&]() { return bpf_program__attach_kprobe_opts(skel->progs.a, "f", &later); };
  later.offset = 0;
  go();
  auto own = [skel]() {
    LIBBPF_OPTS(bpf_kprobe_opts, inner);
    inner.offset = 4;
    return bpf_program__attach_kprobe_opts(skel->progs.b, "f", &inner);
  };
  return own() == nullptr;
}
"""
    assert summary(facts(source, "attach-offset")) == {
        ("attach-offset", "probe_bpf", "a", 8, False),
        ("attach-offset", "probe_bpf", "b", 4, True),
    }


def test_a_store_overwritten_in_a_try_block_and_a_handler_that_may_run() -> None:
    source = r"""
#include "probe.skel.h"
int main() {
  auto *skel = probe_bpf__open_and_load();
  LIBBPF_OPTS(bpf_kprobe_opts, a);
  LIBBPF_OPTS(bpf_kprobe_opts, b);
  try {
    a.offset = 4;
    a.offset = 0;
    b.offset = 0;
    risky();
  } catch (...) {
    b.offset = 12;
  }
  bpf_program__attach_kprobe_opts(skel->progs.a, "f", &a);
  bpf_program__attach_kprobe_opts(skel->progs.b, "f", &b);
  for (auto &name : names) {
    b.offset = 0;
  }
  return 0;
}
"""
    assert summary(facts(source, "attach-offset")) == {
        ("attach-offset", "probe_bpf", "b", 12, True)
    }


def test_a_syntax_error_near_the_evidence_makes_it_uncertain() -> None:
    source = r"""
#include "probe.skel.h"
int broken() {
  auto *skel = probe_bpf__open_and_load();
  LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 16);
  int x = ((( ;
  return bpf_program__attach_kprobe_opts(skel->progs.a, "f", &opts) == nullptr;
}
int fine() {
  auto *skel = probe_bpf__open_and_load();
  LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 32);
  return bpf_program__attach_kprobe_opts(skel->progs.b, "f", &opts) == nullptr;
}
"""
    offsets = {(f.program.name, f.value, f.certain) for f in facts(source, "attach-offset")}
    assert ("a", 16, True) not in offsets
    assert ("b", 32, True) in offsets
    tree = parse(source.encode(), cpp=True)
    assert [e.start_point[0] + 1 for e in syntax_errors(tree.root_node)][:1] == [6]


def test_libbpf_opts_designators_are_no_syntax_error() -> None:
    source = b"""
static LIBBPF_OPTS(bpf_kprobe_opts, shared);
int main() {
  LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = 16, .retprobe = false);
  DECLARE_LIBBPF_OPTS(bpf_uprobe_opts, u, .func_name = "f");
  return 0;
}
"""
    assert syntax_errors(parse(source, cpp=True).root_node) == []


def test_a_c_file_is_still_read_as_c() -> None:
    """The same text as `.c` goes through tree-sitter-c: C++ readings never apply."""
    source = CLASS_MEMBER.replace("probe_bpf::open_and_load()", "probe_bpf__open_and_load()")
    assert not {f for f in facts(source, "attach-offset", path="loader.c") if f.certain} - {
        f for f in facts(source, "attach-offset", path="loader.c")
    }
    assert extract_loader_facts("x.c", CLASS_MEMBER.encode()).skeletons == {"probe"}
