"""Everything the later stages read from one C file's tree, computed in one go: in a worker
process of a parallel run (trees cannot leave the process that parsed them) or once for the
results cache. A pure function of the file's path and bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from secl.parse import large

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from tree_sitter import Tree

    from secl.facts import SectionSite
    from secl.parse.loader import LoaderFacts


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the parse stage and the tree readers of the analysis found in one C or C++
    file."""

    sites: tuple[SectionSite, ...]  # secl.parse.bpf.extract_sites
    # secl.parse.loader.extract_loader_facts, for a file secl.parse.loader.is_loader takes
    loader: LoaderFacts | None = None
    # function name -> byte range of its body (the upgrade analysis follows calls), for a
    # file with a section site
    functions: tuple[tuple[str, tuple[int, int]], ...] | None = None
    # One line when a C++ loader does not parse cleanly (its facts there are uncertain).
    problem: str | None = None


# A huge file (secl.parse.large) is read by its text first: a header that bpftool dumped
# (vmlinux.h, 2-3 MB of declarations) names SECCOMP_* and BPF_PERF_EVENT, but has no section
# call and no function body, so neither a site nor a loader fact; its parse would cost a
# second and a hundred megabytes.
HUGE = large.HUGE
# A function body: what every loader fact sits in (secl.parse.loader reads calls and stores).
_BODY = re.compile(rb"\)\s*\{")


# What every section call contains (secl.index.SITE_CALL without its `\b`), each match
# starting at a `SEC` or a `section` (secl.parse.large.Marks).
_SEC_CALL = re.compile(rb"SEC\w*\s*\(")
_SECTION_CALL = re.compile(rb"section\s*\(")


def has_sites(data: bytes) -> bool:
    """Whether a file may hold a section site (and is worth a parse for it)."""
    if len(data) >= HUGE:
        return large.once(data, "sites", _calls)
    return b"SEC" in data or b"section" in data


def _calls(data: bytes) -> bool:
    found = large.marks(data)
    assert found is not None
    return (
        large.search_at(_SEC_CALL, data, found.sec) is not None
        or large.search_at(_SECTION_CALL, data, found.section) is not None
    )


def may_load(data: bytes) -> bool:
    """Whether a file may hold C loader facts (secl.parse.loader.is_loader, and for a huge
    file a function body)."""
    from secl.parse.loader import is_loader

    return is_loader(data) and has_body(data)


def has_body(data: bytes) -> bool:
    """Whether a file may hold a function body: any but a huge one without `) {`. A huge
    file without one holds no loader code: the loader facts, the names of the skeletons
    and objects it opens, its eBPF for Windows calls and libbpf_register_prog_handler()
    calls are all none, and the stages that search files for those skip it."""
    return len(data) < HUGE or large.once(data, "body", _has_body)


def _has_body(data: bytes) -> bool:
    return _BODY.search(data) is not None


def survey(data: bytes) -> None:
    """Ask a huge file, just read, what the stages will ask of it (the answers are kept:
    secl.parse.large.once): each question reads its megabytes while they are still in the
    CPU's caches, where the stages, each going over every file, would read them back from
    memory."""
    if len(data) >= HUGE:
        from secl.parse.loader import is_loader

        has_sites(data)
        has_body(data)
        is_loader(data)


def function_bodies(tree: Tree) -> dict[str, tuple[int, int]]:
    """The functions defined at file level (also under #if and in ERROR nodes): name ->
    byte range of the body; the first definition of a name wins."""
    found: dict[str, tuple[int, int]] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        for child in node.children:
            if child.type == "function_definition":
                body = child.child_by_field_name("body")
                decl = child.child_by_field_name("declarator")
                while decl is not None and decl.type != "function_declarator":
                    decl = decl.child_by_field_name("declarator")
                name = decl.child_by_field_name("declarator") if decl is not None else None
                if body is not None and name is not None and name.type == "identifier":
                    found.setdefault(name.text.decode(), (body.start_byte, body.end_byte))
            elif child.type.startswith("preproc_") or child.type == "ERROR":
                stack.append(child)
    return found


def file_facts(
    path: str,
    data: bytes,
    tree: Tree | None = None,
    *,
    sites: bool | None = None,
    loads: bool | None = None,
    bodies: bool = True,
) -> FileFacts:
    """The facts of one file (parsed here unless `tree` is given). `sites` and `loads` are
    what the caller knows of `has_sites(data) and not is_cpp(path)` and `is_loader(data)`:
    each reads the whole file, tens of megabytes of searching for a huge header. Without
    `bodies` the functions are left out (None): for a caller that keeps the tree, which
    reads them when the analysis asks (rarely; every top-level node of a large file)."""
    from secl.files import is_cpp
    from secl.parse.bpf import extract_sites
    from secl.parse.loader import LoaderFacts, extract_loader_facts, is_loader, syntax_errors
    from secl.parse.tree import Positions, parse

    cpp = is_cpp(path)
    sites = (has_sites(data) and not cpp) if sites is None else sites
    loads = is_loader(data) if loads is None else loads
    if not sites and not (loads and has_body(data)):
        # Nothing a parse would find (a huge header): its loader facts are none.
        empty = LoaderFacts(path, frozenset(), frozenset()) if loads else None
        return FileFacts((), empty, None)
    if tree is None:
        tree = parse(data, cpp)
    found = tuple(extract_sites(path, data, tree)) if sites else ()
    loader = None
    if loads:
        loader = extract_loader_facts(path, data, tree, Positions(data))
    functions = tuple(function_bodies(tree).items()) if found and bodies else None
    problem = None
    errors = syntax_errors(tree.root_node) if cpp and loader is not None else ()
    if errors:
        row = errors[0].start_point[0] + 1
        problem = f"C++ syntax error at line {row}; loader facts near it are uncertain"
    return FileFacts(found, loader, functions, problem)


def needs_parse(
    data: bytes, path: str = "", *, sites: bool | None = None, loads: bool | None = None
) -> bool:
    """Whether `file_facts` parses the file: C++ code only as a loader (`sites`, `loads`: as
    for file_facts)."""
    from secl.files import is_cpp

    if (has_sites(data) and not is_cpp(path)) if sites is None else sites:
        return True
    return may_load(data) if loads is None else loads and has_body(data)
