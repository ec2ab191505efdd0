"""Parse files in worker processes (`--jobs N`, config `jobs`): each worker turns its share
of the files into FileFacts (secl.parse.filefacts), stores them in the results cache itself
(writing an entry is a file creation, the slowest part of a cold run on some disks: done in
parallel) and sends them back encoded as the cache stores them; the main process keeps the
order of the files, so the output is the same as with one process.

The workers are forked after the files are read: they inherit the bytes and the loaded
parsers, and nothing but the results crosses a pipe. Where fork is not available (or not
safe: macOS), runs stay in one process."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: it costs start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized

    from tree_sitter import Tree

    from secl.cache import Store
    from secl.facts import SectionSite
    from secl.files import FileProblem
    from secl.parse.filefacts import FileFacts

    Resolve = Callable[[str, FileFacts, Tree], list[SectionSite] | None]
    # What a worker sends per file: its path, its entry (or the error secl raised on it),
    # whether it stored the entry, its resolved sites (encoded) or None.
    Result = tuple[str, bytes | tuple[str, str, str], bool, bytes | None]

# The work of the forked workers: set before the pool forks, read by the workers. The files
# in order, their bytes, the results cache with the entry name of each file (or None), and
# what resolves a file's sites from its tree (secl.parse.macros.FileResolver.sites, or None).
_WORK: tuple[list[str], dict[str, bytes], Store | None, dict[str, str], Resolve | None] | None
_WORK = None
# What a worker sends for a file whose entry it stored: its facts encoded, and this mark.
STORED = b""
# Files per task: small enough to balance two workers, large enough to keep the pipe quiet.
CHUNK = 16


def can_fork() -> bool:
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _child(counter: Synchronized, queue: Queue, tasks: list[tuple[int, int]]) -> None:
    """A worker: claims the next chunk until none is left, sends each chunk's results, then
    None."""
    try:
        while (task := _claim(counter, tasks)) is not None:
            queue.put(_work(task))
    finally:
        queue.put(None)


def _claim(counter: Synchronized, tasks: list[tuple[int, int]]) -> tuple[int, int] | None:
    with counter.get_lock():
        i = counter.value
        counter.value = i + 1
    return tasks[i] if i < len(tasks) else None


def _work(task: tuple[int, int]) -> list[Result]:
    """Facts of `paths[start:end]`: per file an encoded entry (and whether this worker stored
    it in the results cache), or (type, message, traceback) of the exception secl raised on
    it; and its resolved sites, encoded, where they were resolved here."""
    import traceback

    from secl.cache import encode
    from secl.files import is_cpp
    from secl.parse.filefacts import file_facts, needs_parse
    from secl.parse.tree import parse

    assert _WORK is not None
    paths, files, store, names, resolve = _WORK
    out: list[Result] = []
    for path in paths[task[0] : task[1]]:
        data = files[path]
        try:
            tree = parse(data, is_cpp(path)) if needs_parse(data, path) else None
            facts = file_facts(path, data, tree)
            blob = encode(facts)
        except Exception as err:  # a bug in secl: reported by the main process
            detail = "".join(traceback.format_exception(err))
            out.append((path, (type(err).__name__, str(err), detail), False, None))
            continue
        stored = False
        if store is not None and path in names:
            before = store.written
            store.put_blob("files", names[path], blob)
            stored = store.written > before
        resolved = None
        if resolve is not None and tree is not None:
            try:
                found = resolve(path, facts, tree)
            except Exception:  # left to the main process, which reports it as it would
                found = None
            if found is not None:
                resolved = encode(found)
        out.append((path, blob, stored, resolved))
    return out


def facts_in_workers(
    paths: list[str],
    files: dict[str, bytes],
    jobs: int,
    here: Callable[[str], FileFacts | FileProblem],
    store: Store | None = None,
    names: dict[str, str] | None = None,
    keep: Callable[[str], bool] | None = None,
    resolve: Resolve | None = None,
    resolved: dict[str, list[SectionSite]] | None = None,
) -> Iterator[tuple[str, tuple[bytes | None, FileFacts] | FileProblem]]:
    """(path, (entry, facts) or the internal error) for every path, in the order given; the
    entry is STORED for facts stored in `store` already (under `names[path]`), else None.
    The main process is one of the `jobs`: it takes chunks as the workers do, reads them
    with `here` (keeping the trees it parsed) and stores them; between its chunks it takes
    in what the workers sent. Its share of the work is what the workers leave: work it does
    while they parse is shared out, work after the last chunk is not. A worker that dies
    leaves its files to it. Files `keep` says the main process will want the tree of are
    read there first, up to its share of the bytes (a tree cannot leave a process: read in
    a worker, such a file would be parsed again after the workers are done). A worker
    resolves the sites of the files it read with `resolve` (their trees are there) and
    sends them, to be put in `resolved`."""
    import multiprocessing
    import queue as queues

    from secl.cache import decode
    from secl.files import FileProblem

    global _WORK
    names = names or {}
    done: dict[str, tuple[bytes | None, FileFacts] | FileProblem] = {}

    def mine(path: str) -> None:
        outcome = here(path)
        if isinstance(outcome, FileProblem):
            done[path] = outcome
        elif store is not None and path in names:
            store.put("files", names[path], outcome)
            done[path] = (STORED, outcome)
        else:
            done[path] = (None, outcome)

    finished = 0

    def take(chunk: list[Result] | None) -> None:
        nonlocal finished
        if chunk is None:
            finished += 1
            return
        for path, outcome, was_stored, sites in chunk:
            if sites is not None and resolved is not None:
                found = decode(sites)
                if isinstance(found, list):
                    resolved[path] = found
            if isinstance(outcome, tuple):
                done[path] = _problem(path, *outcome)
                continue
            facts = decode(outcome)
            if facts is None:
                done[path] = _problem(path, "RuntimeError", "a worker's facts did not decode", "")
                continue
            if was_stored and store is not None:
                store.written += 1
            done[path] = (STORED if was_stored else outcome, facts)

    # Large files first, so that no process is left with a big one at the end.
    ordered = sorted(paths, key=lambda p: -len(files[p]))
    first: list[str] = []
    if keep is not None:
        share = sum(len(files[p]) for p in ordered) // jobs
        for path in ordered:
            if share > 0 and keep(path):
                first.append(path)
                share -= len(files[path])
        taken = set(first)
        ordered = [p for p in ordered if p not in taken]
    tasks = [(i, min(i + CHUNK, len(ordered))) for i in range(0, len(ordered), CHUNK)]
    context = multiprocessing.get_context("fork")
    counter = context.Value("i", 0)
    _WORK = (ordered, files, store, names, resolve)
    try:
        inbox = context.Queue()
        children = [
            context.Process(target=_child, args=(counter, inbox, tasks), daemon=True)
            for _ in range(jobs - 1)
        ]
        for child in children:
            child.start()
        mine_first = [first[i : i + CHUNK] for i in range(0, len(first), CHUNK)]
        while mine_first or (task := _claim(counter, tasks)) is not None:
            for path in mine_first.pop(0) if mine_first else ordered[task[0] : task[1]]:
                mine(path)
            while True:
                try:
                    take(inbox.get_nowait())
                except queues.Empty:
                    break
        while finished < len(children):
            try:
                take(inbox.get(timeout=1.0))
            except queues.Empty:
                if all(c.exitcode is not None for c in children):
                    break  # a worker died: its files are read here below
        for child in children:
            child.join()
    finally:
        _WORK = None
    for path in paths:
        if path not in done:
            mine(path)
        yield path, done[path]


def _problem(path: str, kind: str, message: str, detail: str) -> FileProblem:
    from secl import __version__
    from secl.files import FileProblem

    what = f"{kind}: {message}" if message else kind
    what = " ".join(what.split())
    if len(what) > 200:
        what = what[:199] + "…"
    return FileProblem(
        path,
        f"internal error in secl {__version__} ({what}); file skipped",
        internal=True,
        detail=detail,
    )
