"""Everything the later stages read from one C file's tree, computed in one go: in a worker
process of a parallel run (trees cannot leave the process that parsed them) or once for the
results cache. A pure function of the file's path and bytes."""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from tree_sitter import Tree

    from secl.facts import SectionSite
    from secl.parse.loader import LoaderFacts


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the parse stage and the tree readers of the analysis found in one C file."""

    sites: tuple[SectionSite, ...]  # secl.parse.bpf.extract_sites
    # secl.parse.loader.extract_loader_facts, for a file secl.parse.loader.is_loader takes
    loader: LoaderFacts | None = None
    # function name -> byte range of its body (the upgrade analysis follows calls), for a
    # file with a section site
    functions: tuple[tuple[str, tuple[int, int]], ...] | None = None


def has_sites(data: bytes) -> bool:
    """Whether a file may hold a section site (and is worth a parse for it)."""
    return b"SEC" in data or b"section" in data


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


def file_facts(path: str, data: bytes, tree: Tree | None = None) -> FileFacts:
    """The facts of one file (parsed here unless `tree` is given)."""
    from secl.parse.bpf import extract_sites
    from secl.parse.loader import extract_loader_facts, is_loader
    from secl.parse.tree import Positions, parse

    if tree is None:
        tree = parse(data)
    sites = tuple(extract_sites(path, data, tree)) if has_sites(data) else ()
    loader = None
    if is_loader(data):
        loader = extract_loader_facts(path, data, tree, Positions(data))
    functions = tuple(function_bodies(tree).items()) if sites else None
    return FileFacts(sites, loader, functions)
