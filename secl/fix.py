"""Apply the findings' fixes: `secl fix`, `secl check --fix` and `secl check --diff`.

Fixes are planned in memory first, in rounds (as ruff does): apply every chosen fix of a round
to the bytes the analysis read, bottom-up, re-analyse, and go on while fixes remain. A file is
left alone when an edit is malformed, when re-parsing shows that its sections changed in a way
no fix intended, or when a later fix would undo an earlier one. Only then are files written,
each atomically. Everything up to the write is a pure function of the project.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import itertools
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from secl.analysis.project import Project
from secl.facts import SectionSite
from secl.files import is_cpp
from secl.findings import Edit, Finding
from secl.parse.bpf import extract_sites
from secl.parse.cstring import decode_literal
from secl.parse.tree import lex, parse
from secl.report.text import printable

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
MAX_ROUNDS = 10  # a fix that unlocks another is normal; ten in a row is a loop

Analyse = Callable[[Project], list[Finding]]


class EditError(ValueError):
    """Edits that cannot be applied as given (overlapping, out of range, unencodable)."""

    def __init__(self, message: str, *, internal: bool = True) -> None:
        super().__init__(message)
        self.internal = internal  # a malformed fix (a secl bug), not a property of the file


# -- the edit engine ------------------------------------------------------------------------


def encode_content(content: str, data: bytes) -> bytes:
    """The bytes of an edit's text. Non-ASCII text is written as UTF-8, so only into files
    that are UTF-8: secl cannot know another file's encoding."""
    raw = content.encode("utf-8")
    if not content.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise EditError(
                "non-ASCII replacement text for a file that is not UTF-8", internal=False
            ) from None
    return raw


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    # Two insertions at one offset overlap too: their order would be a guess.
    return (a[0] < b[1] and b[0] < a[1]) or a[0] == b[0]


def apply_edits(data: bytes, edits: Iterable[Edit]) -> bytes:
    """`data` with every edit applied: offsets all refer to `data` itself, so edits are applied
    from the end of the file backwards. Identical duplicates count once; overlapping edits are
    refused (EditError). Bytes outside the edits are copied unchanged."""
    unique = sorted({(e.span.start_byte, e.span.end_byte, e.content) for e in edits}, reverse=True)
    out = data
    previous: tuple[int, int] | None = None
    for start, end, content in unique:
        if not 0 <= start <= end <= len(data):
            raise EditError(f"edit {start}..{end} is outside the file ({len(data)} bytes)")
        if previous is not None and _overlap((start, end), previous):
            raise EditError(f"overlapping edits at bytes {start}..{end} and {previous[0]}..")
        out = out[:start] + encode_content(content, data) + out[end:]
        previous = (start, end)
    return out


# -- the re-parse check ---------------------------------------------------------------------


def _shape(site: SectionSite) -> tuple[object, ...]:
    """What an edit of the section string must never change about a site."""
    return (
        site.macro, site.kind, site.program, site.symbol, site.is_static, site.branch,
        site.template, site.template_macro, len(site.pieces),
    )  # fmt: skip


# One C string literal, as a C lexer reads it (prefix, escapes, no raw newline).
_STRING_LITERAL = re.compile(rb'(?:u8|u|U|L)?"(?:[^"\\\r\n]|\\.)*"', re.S)


def _token_problem(before: bytes, edit: Edit) -> str | None:
    """A literal must stay one literal: then no C parser can read the code around it
    differently. (tree-sitter's error count is no such test: around an existing error its
    recovery changes with the length of a string.)"""
    old = before[edit.span.start_byte : edit.span.end_byte]
    if _STRING_LITERAL.fullmatch(old) and not _STRING_LITERAL.fullmatch(edit.content.encode()):
        return f"the fix replaces the string literal {old.decode('utf-8', 'replace')} with " + (
            f"{edit.content}, which is not one string literal"
        )
    return None


def _context_problem(before: bytes, after: bytes, edits: Sequence[Edit]) -> str | None:
    """The code around the edits must read as the same C tokens before and after: an edit that
    opens a comment or a string swallowing what follows changes them, whatever a tolerant
    parser makes of the result."""
    unique = {(e.span.start_byte, e.span.end_byte, e.content): e for e in edits}
    ordered = sorted(unique.values(), key=lambda e: e.span.start_byte)
    old_ranges = [(e.span.start_byte, e.span.end_byte) for e in ordered]
    new_ranges = []
    delta = 0
    for e in ordered:
        start = e.span.start_byte + delta
        new_ranges.append((start, start + len(e.content.encode())))
        delta += len(e.content.encode()) - (e.span.end_byte - e.span.start_byte)
    if _tokens_outside(before, old_ranges) != _tokens_outside(after, new_ranges):
        return "the code around the fix parses differently after it (other C tokens)"
    return None


def _tokens_outside(data: bytes, ranges: list[tuple[int, int]]) -> list[tuple[str, bytes]]:
    return [
        (tok.type, tok.text)
        for tok in lex(data, 0, every_branch=True)
        if not any(tok.start_byte < end and start < tok.end_byte for start, end in ranges)
    ]


def _expected_section(site: SectionSite, edits: Sequence[Edit]) -> str | None:
    """The section a site should resolve to once `edits` (each replacing one whole literal
    piece) are applied; None when that cannot be said (the caller then checks less)."""
    replaced = {(e.span.start_byte, e.span.end_byte): e.content for e in edits}
    values = []
    for piece in site.pieces:
        text = replaced.pop((piece.span.start_byte, piece.span.end_byte), piece.text)
        value = decode_literal(text) if piece.kind == "literal" else None
        if value is None:
            return None
        values.append(value)
    return "".join(values) if not replaced else None


def reparse_problem(path: str, before: bytes, after: bytes, edits: Sequence[Edit]) -> str | None:
    """Why `after` (= `before` with `edits`) must not be written, or None. Every site must still
    be there with the same program, kind and `#if` branch; a site no edit touches must resolve
    to the same section, an edited one to the section the edit spells; a string literal must
    stay one string literal."""
    for edit in edits:
        problem = _token_problem(before, edit)
        if problem is not None:
            return problem
    old, new = extract_sites(path, before), extract_sites(path, after)
    if len(old) != len(new):
        return f"the fixed file has {len(new)} section sites instead of {len(old)}"
    for b, a in zip(old, new, strict=True):
        where = f"{b.span.start.row}:{b.span.start.column}"
        if _shape(b) != _shape(a):
            return f"the section site at {where} parses differently after the fix"
        touched = [
            e for e in edits
            if e.span.start_byte < b.span.end_byte and b.span.start_byte < e.span.end_byte
        ]  # fmt: skip
        if not touched:
            if (a.section_text, a.section) != (b.section_text, b.section):
                return f"the section at {where} changed to {a.section_text} without a fix for it"
            continue
        expected = _expected_section(b, touched)
        if expected is not None and a.section != expected:
            return (
                f"the section at {where} resolves to {a.section!r} after the fix, "
                f"not the intended {expected!r}"
            )
        if expected is None and (a.section is None) != (b.section is None):
            return f"the section at {where} no longer resolves the same way after the fix"
    return _context_problem(before, after, edits)


# -- planning -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """A file the fixer left alone, and why."""

    path: str
    reason: str
    internal: bool  # a broken fix (a secl bug), not a property of the user's file system


@dataclass(frozen=True, slots=True)
class FileFix:
    """One file's bytes before and after its fixes."""

    path: str
    before: bytes  # as read
    after: bytes
    applied: tuple[Finding, ...]  # the findings whose fixes made `after`, all rounds


@dataclass
class Plan:
    """The project with every accepted fix applied in memory, and what remains in it."""

    project: Project
    findings: list[Finding]
    files: dict[str, FileFix] = field(default_factory=dict)  # changed files only
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(len(f.applied) for f in self.files.values())


def wanted(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    return fix is not None and bool(fix.edits) and (unsafe or fix.applicability == "safe")


def _first_byte(finding: Finding) -> tuple[str, int]:
    edits = finding.fix.edits if finding.fix else ()
    return min(((e.path, e.span.start_byte) for e in edits), default=("", 0))


def choose(
    findings: Sequence[Finding], project: Project, unsafe: bool, blocked: set[str]
) -> tuple[list[Finding], list[Refusal]]:
    """The fixes of one round: in file order, skipping a fix that overlaps one already taken
    (the next round sees it again, re-computed on the fixed text). A fix identical to a taken
    one (two rules, one rewrite) is taken with it."""
    taken: dict[str, list[tuple[int, int]]] = {}
    taken_edits: set[Edit] = set()
    chosen: list[Finding] = []
    refusals: list[Refusal] = []
    for finding in sorted((f for f in findings if wanted(f, unsafe)), key=_first_byte):
        edits = finding.fix.edits  # type: ignore[union-attr]
        if any(e.path not in project.reported or e.path in blocked for e in edits):
            continue
        if all(e in taken_edits for e in edits):
            chosen.append(finding)
            continue
        spans = sorted((e.path, e.span.start_byte, e.span.end_byte) for e in edits)
        if any(
            p == q and _overlap((s, e), (t, u))
            for (p, s, e), (q, t, u) in itertools.pairwise(spans)
        ):
            refusals.append(
                Refusal(edits[0].path, f"{finding.code}: the fix's edits overlap", True)
            )
            continue
        if any(_overlap((s, e), other) for p, s, e in spans for other in taken.get(p, ())):
            continue
        for p, s, e in spans:
            taken.setdefault(p, []).append((s, e))
        taken_edits.update(edits)
        chosen.append(finding)
    return chosen, refusals


def reanalysed(
    project: Project, files: dict[str, bytes], original: dict[str, bytes] | None = None
) -> Project:
    """The project with some files' bytes replaced: unchanged files keep their trees and
    sites, changed ones are parsed again. A site resolved through a changed file (a prefix
    `#define` in a shared header) is resolved again, with every site that shares a file of
    its spellings (a program the edit renames too). `original` holds the files as first
    read: a file changed in an earlier round exists only in memory, so the resolver is
    given it rather than reading the disk."""
    new = Project(
        root=project.root, files=files, sites=[], reported=project.reported,
        config=project.config, loader_scan=project.loader_scan, objects=project.objects,
        kernel=project.kernel,
    )  # fmt: skip
    changed = {path for path, data in files.items() if data is not project.files.get(path)}
    if original is not None:
        changed |= {path for path, data in files.items() if data is not original.get(path)}
    redo = _dependents(project.sites, changed) if changed else set()
    kept: list[SectionSite] = [s for s in project.sites if s.path not in redo]
    fresh: list[SectionSite] = []
    for path, data in files.items():
        if (b"SEC" not in data and b"section" not in data) or is_cpp(path):
            continue  # no sites (C++ code is never a BPF source)
        if data is project.files.get(path):
            new.remember_tree(path, project.tree(path))
        else:
            new.remember_tree(path, parse(data))
        if path in redo:
            fresh.extend(extract_sites(path, data, new.tree(path)))
    if redo:
        from secl.parse.includes import build_includes
        from secl.parse.macros import resolve_sites

        given = {path: files[path] for path in redo if path in files}
        build = build_includes(project)
        config, root = project.config, project.root
        fresh = list(resolve_sites(fresh, given, config, root, new.tree, build=build).sites)
    new.sites = kept + fresh
    return new


def _dependents(sites: Sequence[SectionSite], changed: set[str]) -> set[str]:
    """`changed` and the files whose sites are spelled in a changed file, or share a file of
    their spellings with such a site, to a fixed point."""
    redo = set(changed)
    spelled = {s.path: {sp.path for sp in s.spellings} for s in sites if s.spellings}
    while True:
        sources = set(redo)
        for path, places in spelled.items():
            if path in redo:
                sources |= places
        more = {path for path, places in spelled.items() if places & sources} - redo
        if not more:
            return redo
        redo |= more


def plan_fixes(
    project: Project,
    findings: Sequence[Finding],
    *,
    unsafe: bool = False,
    analyse: Analyse | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> Plan:
    """Apply the wanted fixes of `findings` (the analysis of `project`) round by round until
    none is left, in memory. `analyse` re-runs the rules (default: all of secl's)."""
    if analyse is None:
        from secl.analysis.run import run_rules

        analyse = run_rules
    original = project.files
    history: dict[str, list[bytes]] = {}  # every content each file went through
    applied: dict[str, list[Finding]] = {}
    blocked: set[str] = set()
    refusals: list[Refusal] = []
    current, remaining = project, list(findings)

    def refuse(path: str, reason: str, internal: bool, files: dict[str, bytes]) -> None:
        refusals.append(Refusal(path, reason, internal))
        blocked.add(path)
        applied.pop(path, None)
        files[path] = original[path]

    for _ in range(max_rounds):
        chosen, bad = choose(remaining, current, unsafe, blocked)
        refusals.extend(bad)
        if not chosen:
            break
        by_path: dict[str, list[Edit]] = {}
        owners: dict[str, list[Finding]] = {}
        for finding in chosen:
            for edit in finding.fix.edits:  # type: ignore[union-attr]
                by_path.setdefault(edit.path, []).append(edit)
            for path in {e.path for e in finding.fix.edits}:  # type: ignore[union-attr]
                owners.setdefault(path, []).append(finding)
        files = dict(current.files)
        for path, edits in by_path.items():
            before = current.files[path]
            try:
                after = apply_edits(before, edits)
                problem = reparse_problem(path, before, after, edits)
            except EditError as err:
                refuse(path, f"not fixed: {err}", err.internal, files)
                continue
            except Exception as err:  # a bug in secl: this file is not fixed, the others are
                refuse(path, f"not fixed: {_internal(err)}", True, files)
                continue
            if problem is not None:
                refuse(path, f"not fixed: {problem}", True, files)
                continue
            seen = history.setdefault(path, [original[path]])
            if after in seen:
                codes = ", ".join(sorted({f.code for f in owners[path]}))
                refuse(path, f"not fixed: the fix for {codes} undoes an earlier fix", True, files)
                continue
            seen.append(after)
            files[path] = after
            applied.setdefault(path, []).extend(owners[path])
        try:
            current = reanalysed(current, files, original)
            remaining = analyse(current)
        except Exception as err:  # a bug in secl: this round's files are left alone
            files = dict(current.files)
            for path in sorted(by_path):
                if path not in blocked:
                    refuse(path, f"not fixed: {_internal(err)}", True, files)
            current = reanalysed(current, files, original)
            remaining = analyse(current)
    pending, _ = choose(remaining, current, unsafe, blocked)
    if pending:
        # Only the files whose fixes still go on are refused: one file's loop must not
        # block another file's fixes.
        files = dict(current.files)
        for path in sorted({e.path for f in pending for e in f.fix.edits}):  # type: ignore[union-attr]
            refuse(path, f"not fixed: fixes did not settle after {max_rounds} rounds", True, files)
        current = reanalysed(current, files, original)
        remaining = analyse(current)
    # A remaining fix of any applicability that restores an earlier text would undo ours on a
    # later run (e.g. with --unsafe-fixes): then none of this file's fixes is kept.
    files = dict(current.files)
    for finding in remaining:
        if finding.fix is None:
            continue
        for path in {e.path for e in finding.fix.edits} & set(applied):
            edits = [e for e in finding.fix.edits if e.path == path]
            try:
                after = apply_edits(files[path], edits)
            except EditError:
                continue
            if after in history[path][:-1]:
                refuse(path, f"not fixed: the fix for {finding.code} would undo it", True, files)
    if files != current.files:
        current = reanalysed(current, files, original)
        remaining = analyse(current)
    changed = {
        path: FileFix(path, original[path], current.files[path], tuple(applied.get(path, ())))
        for path in sorted(applied)
        if current.files[path] != original[path]
    }
    # A fix refused in `choose` comes back every round: say it once.
    return Plan(current, remaining, changed, list(dict.fromkeys(refusals)))


def _internal(err: Exception) -> str:
    from secl import __version__

    what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return f"internal error in secl {__version__} ({' '.join(what.split())})"


# -- diff and writing -----------------------------------------------------------------------

_LINE = re.compile(rb"[^\n]*\n|[^\n]+")


def unified_diff(path: str, before: bytes, after: bytes) -> bytes:
    """A unified diff of the bytes as they are (CR, BOM and any encoding kept), applicable
    with `patch -p0`."""
    name = os.fsencode(path)
    lines = difflib.diff_bytes(
        difflib.unified_diff, _LINE.findall(before), _LINE.findall(after), name, name
    )
    return b"".join(
        line if line.endswith(b"\n") else line + b"\n\\ No newline at end of file\n"
        for line in lines
    )


@dataclass(frozen=True, slots=True)
class WriteRefusal:
    """Why a file was not written; `error` when that is a failure of the run (exit 2), not
    a property the user gave the file (read-only, changed meanwhile)."""

    reason: str
    error: bool = False

    def __str__(self) -> str:
        return self.reason


def write_atomically(path: str, data: bytes, expected: bytes) -> WriteRefusal | None:
    """Replace the file's bytes with `data`; the reason it was not done, or None.

    The new bytes go to a temporary file next to the real file (a symlink is followed, so the
    link stays a link), get its owner, mode and extended attributes, and replace it with one
    rename: a reader sees the old or the new file, never half of one. A file that is
    read-only or changed since it was read is left alone; so is one with more than one hard
    link (the rename would split it from its other names) and one whose owner or extended
    attributes cannot be kept. SIGINT, SIGTERM and SIGHUP wait until the temporary file is
    renamed or removed: nothing is left behind."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            return WriteRefusal("not a regular file; not fixed", error=True)
        # Mode bits too: root passes access(), but a 0444 file says "do not edit me".
        if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
            return WriteRefusal("read-only; not fixed")
        if st.st_nlink > 1:
            return WriteRefusal(
                f"has {st.st_nlink} hard links, which a rewrite would separate; not fixed",
                error=True,
            )
        with open(real, "rb") as fh:
            if fh.read() != expected:
                return WriteRefusal("changed since secl read it; not fixed")
    except OSError as err:
        return WriteRefusal(f"{err.strerror or err}; not fixed", error=True)
    with _signals_held():
        return _replace(real, data, st)


def _replace(real: str, data: bytes, st: os.stat_result) -> WriteRefusal | None:
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(real)}.", suffix=".secl", dir=os.path.dirname(real)
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            # Owner first: chown() clears the set-user-ID and set-group-ID bits.
            problem = _keep_owner(fh.fileno(), st)
            if problem is None:
                os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
                problem = _keep_xattrs(real, fh.fileno())
            if problem is not None:
                return WriteRefusal(problem, error=True)
            os.fsync(fh.fileno())
        os.replace(tmp, real)
        tmp = None
    except OSError as err:
        return WriteRefusal(f"{err.strerror or err}; not fixed", error=True)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return None


def _keep_owner(fd: int, st: os.stat_result) -> str | None:
    """Give the new file the old one's owner and group; why not, if that fails (only root
    may give a file away, and a user only to a group of theirs)."""
    now = os.fstat(fd)
    if (now.st_uid, now.st_gid) == (st.st_uid, st.st_gid):
        return None
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except OSError:
        return f"its owner ({st.st_uid}:{st.st_gid}) cannot be kept; not fixed"
    return None


def _keep_xattrs(real: str, fd: int) -> str | None:
    """Copy the extended attributes (ACLs, SELinux labels, user.*) to the new file."""
    if not hasattr(os, "listxattr"):
        return None
    try:
        names = os.listxattr(real)
    except OSError:
        return None  # the file system has none
    for name in names:
        try:
            value = os.getxattr(real, name)
            with contextlib.suppress(OSError):
                if os.getxattr(fd, name) == value:  # e.g. the directory's default label
                    continue
            os.setxattr(fd, name, value)
        except OSError as err:
            return f"its extended attribute {name} cannot be kept ({err.strerror}); not fixed"
    return None


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT, SIGTERM and SIGHUP back for the duration (delivered right after)."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask, or not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# -- the commands ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from secl.cli import selection_arguments

    parser.description = (
        "Print a unified diff of the fixes (exit 1 when there is something to change), "
        "or apply them with --in-place (exit 1 when a selected finding remains)."
    )
    parser.add_argument("--in-place", action="store_true", help="write the fixes to the files")
    parser.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes")
    selection_arguments(parser)


def run_fix(args: argparse.Namespace) -> int:
    """`secl fix [PATH ...]`."""
    from secl.cli import analyse, finish, read_run

    run = read_run(args)
    if run is None:
        return EXIT_ERROR
    findings = analyse(run)
    mode = Mode(
        write=args.in_place,
        unsafe=args.unsafe_fixes,
        output_format=args.output_format,
        quiet=args.quiet or args.silent,
        exit_on_fix=args.exit_non_zero_on_fix,
    )
    return finish(run, args, execute(run.project, findings, mode))


def apply_fixes(run, findings: list[Finding], args: argparse.Namespace) -> int:
    """`secl check --fix` / `--diff` (the run is already loaded and analysed)."""
    mode = Mode(
        write=not args.diff,
        unsafe=args.unsafe_fixes,
        output_format=args.output_format,
        exit_zero=args.exit_zero,
        stdin=bool(getattr(args, "stdin_filename", None)),
        quiet=args.quiet or args.silent,
        exit_on_fix=args.exit_non_zero_on_fix,
    )
    return execute(run.project, findings, mode)


@dataclass(frozen=True, slots=True)
class Mode:
    """How the fixes of a run are applied and reported."""

    write: bool  # apply in place (or, for standard input, print the fixed text)
    unsafe: bool
    output_format: str = "full"
    exit_zero: bool = False
    stdin: bool = False
    quiet: bool = False  # no summary lines (--quiet, --silent)
    exit_on_fix: bool = False  # exit 1 when a file was changed (--exit-non-zero-on-fix)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_line(fixed: int, remaining: Sequence[Finding], *, unsafe: bool, would: bool) -> str:
    """`Fixed 2 findings; 1 more fixable with `--unsafe-fixes`; 3 without a fix.`"""
    no_fix = sum(1 for f in remaining if f.fix is None or not f.fix.edits)
    only_unsafe = sum(1 for f in remaining if wanted(f, True) and not wanted(f, False))
    stuck = sum(1 for f in remaining if wanted(f, unsafe))
    parts = [f"{'Would fix' if would else 'Fixed'} {_count(fixed, 'finding')}"]
    if not unsafe:  # with --unsafe-fixes given, "fixable with --unsafe-fixes" says nothing
        parts.append(f"{only_unsafe} more fixable with `--unsafe-fixes`")
    parts.append(f"{no_fix} without a fix")
    if stuck:
        parts.append(f"{_count(stuck, 'fixable finding')} not fixed (see the errors above)")
    return "; ".join(parts) + "."


def execute(project: Project, findings: list[Finding], mode: Mode) -> int:
    plan = plan_fixes(project, findings, unsafe=mode.unsafe)
    for refusal in plan.refusals:
        print(printable(f"secl: {refusal.path}: {refusal.reason}"), file=sys.stderr)
    internal = any(r.internal for r in plan.refusals)
    if not mode.write:
        diff = b"".join(unified_diff(f.path, f.before, f.after) for f in plan.files.values())
        sys.stdout.flush()
        sys.stdout.buffer.write(diff)
        sys.stdout.flush()
        if not mode.quiet:
            print(summary_line(plan.applied, plan.findings, unsafe=mode.unsafe, would=True),
                  file=sys.stderr)  # fmt: skip
        code = EXIT_FINDINGS if diff and not mode.exit_zero else EXIT_CLEAN
        return EXIT_ERROR if internal else code
    if mode.stdin:
        (path,) = project.reported
        sys.stdout.flush()
        sys.stdout.buffer.write(plan.project.files[path])
        sys.stdout.flush()
        _report(plan.project, plan.findings, "concise", sys.stderr, summary=not mode.quiet)
        if not mode.quiet:
            print(summary_line(plan.applied, plan.findings, unsafe=mode.unsafe, would=False),
                  file=sys.stderr)  # fmt: skip
    else:
        plan, failed = _write(plan)
        internal = internal or failed
        machine = mode.output_format not in ("full", "concise")
        _report(plan.project, plan.findings, mode.output_format, sys.stdout,
                summary=not mode.quiet)  # fmt: skip
        if not mode.quiet:
            print(summary_line(plan.applied, plan.findings, unsafe=mode.unsafe, would=False),
                  file=sys.stderr if machine else sys.stdout)  # fmt: skip
    code = EXIT_FINDINGS if plan.findings and not mode.exit_zero else EXIT_CLEAN
    if mode.exit_on_fix and plan.files:  # what was changed (a failed write is not kept)
        code = EXIT_FINDINGS
    return EXIT_ERROR if internal else code


def _write(plan: Plan) -> tuple[Plan, bool]:
    """Write the changed files; a file that cannot be written keeps its old bytes in the
    returned plan, so what it reports is what is on disk. True with it when a write failed
    in a way that is an error of the run (exit 2)."""
    from secl.analysis.run import run_rules

    done: set[str] = set()
    failed: dict[str, bytes] = {}
    error = False
    for fix in plan.files.values():
        real = os.path.realpath(fix.path)
        if real in done:  # the same file reached by two paths: written once
            continue
        problem = write_atomically(fix.path, fix.after, fix.before)
        if problem is None:
            done.add(real)
            continue
        print(printable(f"secl: {fix.path}: {problem}"), file=sys.stderr)
        failed[fix.path] = fix.before
        error = error or problem.error
    if not failed:
        return plan, False
    files = {**plan.project.files, **failed}
    project = reanalysed(plan.project, files)
    kept = {p: f for p, f in plan.files.items() if p not in failed}
    return Plan(project, run_rules(project), kept, plan.refusals), error


def _report(
    project: Project, findings: list[Finding], output_format: str, stream, *, summary: bool = True
) -> None:
    from secl.catalogue import load_catalogue
    from secl.report import render

    out = render(
        findings, output_format, sources=project.files, rules=load_catalogue(),
        root=project.root, fixable_note=False, summary=summary,
    )  # fmt: skip
    if out:
        stream.write(out)
        stream.flush()
