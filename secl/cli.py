"""Command line: argument parsing only; the stages do the work."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import contextmanager as _contextmanager

from secl.report.text import printable

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_COMMANDS = ("check", "sections", "rule", "fix", "verify", "clean")


def _parser(command: str | None = None):
    import argparse

    from secl import __version__

    parser = argparse.ArgumentParser(
        prog="secl", description='A static linter for BPF section names (SEC("...")).'
    )
    parser.add_argument("--version", action="version", version=f"secl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p, formats: Sequence[str]) -> None:
        p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: .)")
        p.add_argument("--output-format", choices=formats, default="full",
                       help=f"{', '.join(formats)} (default: full)")  # fmt: skip
        p.add_argument("--config", metavar="FILE", help="read [tool.secl] from this file")
        p.add_argument("--output-file", "-o", metavar="FILE",
                       help="write the report to FILE instead of standard output")  # fmt: skip
        if p.prog.split()[-1] != "sections":
            p.add_argument("--quiet", "-q", action="store_true",
                           help="print the findings only, no summary")  # fmt: skip
            p.add_argument("--silent", "-s", action="store_true",
                           help="print nothing on stdout (the exit code tells)")  # fmt: skip
            p.add_argument("--exit-non-zero-on-fix", "-e", action="store_true",
                           help="exit 1 when a fix was written, even if none remains")  # fmt: skip
        p.add_argument("--no-config", action="store_true", help="ignore configuration files")
        p.add_argument("--target-libbpf", metavar="VERSION", help='"upgrade" or e.g. "1.7"')
        p.add_argument("--exclude", action="append", metavar="PATTERN", default=None,
                       help="skip paths matching this glob, relative to the project root "
                       "(repeatable; added to the configured ones)")  # fmt: skip
        p.add_argument("--skeleton-map", action="append", metavar="NAME=PATH", default=None,
                       help="pair a skeleton or object NAME with its BPF source")  # fmt: skip
        p.add_argument("--define", action="append", metavar="NAME=VALUE", default=None,
                       help="a macro for resolving sections, as with -D (repeatable)")  # fmt: skip
        p.add_argument("--include-dir", "-I", action="append", metavar="DIR", default=None,
                       help="a header directory for resolving sections, as with -I "
                       "(repeatable)")  # fmt: skip
        p.add_argument("--target-arch", metavar="ARCH",
                       help="predefine the compiler's macros for ARCH (x86_64, arm64)")  # fmt: skip
        p.add_argument("--compile-commands", metavar="PATH",
                       help="compile_commands.json, or its directory")  # fmt: skip
        p.add_argument("--loader", metavar="KIND",
                       help="judge every BPF source as loaded by KIND (libbpf, libbpfgo, "
                       "libbpf-rs, cilium-ebpf, aya, bcc, gobpf, ebpf-for-windows, "
                       "other)")  # fmt: skip
        p.add_argument("--kernel-functions", metavar="FILE|host",
                       help="judge kprobe targets by a kernel's tracefs "
                       "available_filter_functions (\"host\": the running kernel's)")  # fmt: skip
        p.add_argument("--kprobe-blacklist", metavar="FILE|host",
                       help="and by its debugfs kprobes/blacklist")  # fmt: skip
        p.add_argument("--no-cache", action="store_true",
                       help="neither read nor write the results cache (.secl_cache)")  # fmt: skip
        p.add_argument("--jobs", "-j", type=_jobs, metavar="N",
                       help="parse in N processes (default: the CPUs; 1: in this one)")  # fmt: skip
        verbose(p)

    def verbose(p) -> None:
        taken = {o for a in p._actions for o in a.option_strings}
        if "--verbose" in taken:  # the command's module has its own
            return
        flags = [f for f in ("-v", "--verbose") if f not in taken]
        p.add_argument(*flags, dest="verbose", action="store_true",
                       help="say more: tracebacks of internal errors, excludes that matched "
                       "nothing")  # fmt: skip

    # Only the subcommand that runs is built (argparse set-up is a visible part of a one-file
    # run's start-up); `secl -h` and a mistyped command build them all.
    wanted = command if command in _COMMANDS else None

    if wanted in (None, "check"):
        check = sub.add_parser("check", help="lint section names (the default command)")
        common(check, ("full", "concise", "json", "sarif", "github"))
        selection_arguments(check)
        check.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
        check.add_argument("--statistics", action="store_true", help="counts per rule")
        check.add_argument("--stdin-filename", metavar="NAME", help="lint standard input as NAME")
        check.add_argument("--fix", action="store_true", help="apply safe fixes in place")
        check.add_argument("--unsafe-fixes", action="store_true", help="also apply unsafe fixes")
        check.add_argument(
            "--diff", action="store_true", help="print the fixes as a diff, change nothing"
        )

    if wanted in (None, "sections"):
        sections = sub.add_parser("sections", help="inventory of every section site")
        common(sections, ("full", "concise", "json"))

    # `fix` and `verify` own their arguments (secl/fix.py, secl/verify/); their modules are
    # imported only when that command runs, to keep start-up cheap for the others.
    if wanted in (None, "fix"):
        fix = sub.add_parser("fix", help="rewrite section names (.single and other fixes)")
        common(fix, ("full", "concise", "json"))
        if wanted == "fix":
            from secl.fix import add_arguments as add_fix_arguments

            add_fix_arguments(fix)
    if wanted in (None, "verify"):
        verify = sub.add_parser("verify", help="confirm predictions on a real kernel")
        if wanted == "verify":
            from secl.verify import add_arguments as add_verify_arguments

            add_verify_arguments(verify)
            verbose(verify)

    if wanted in (None, "clean"):
        clean = sub.add_parser("clean", help="remove the results cache (.secl_cache)")
        clean.add_argument("paths", nargs="*", metavar="PATH",
                           help="a path in the project (default: .)")  # fmt: skip
        clean.add_argument("--config", metavar="FILE", help="read [tool.secl] from this file")
        clean.add_argument("--no-config", action="store_true", help="ignore configuration files")
        verbose(clean)

    if wanted in (None, "rule"):
        rule = sub.add_parser("rule", help="explain a rule")
        rule.add_argument("code", nargs="?", metavar="RULE",
                          help="a rule code (SECL201) or name (unknown-section-name)")  # fmt: skip
        rule.add_argument("--all", action="store_true", help="list every rule")
        rule.add_argument("--output-format", choices=("text", "json"), default="text",
                          help="text (default) or json")  # fmt: skip
        verbose(rule)
    return parser


def _jobs(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes, 1 or more, not {text!r}")
    return value


def selection_arguments(parser) -> None:
    """--select, --extend-select, --ignore (check and fix)."""
    parser.add_argument("--select", metavar="CODES",
                        help='rule codes or prefixes to check, comma-separated ("SECL1,SECL201", '
                        '"ALL"); replaces the configured selection')  # fmt: skip
    parser.add_argument("--extend-select", metavar="CODES",
                        help="codes or prefixes to check in addition to the selection")  # fmt: skip
    parser.add_argument("--ignore", metavar="CODES",
                        help="codes or prefixes not to report, comma-separated")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    from secl.methods import install

    install()  # before the record classes are defined (secl.methods: start-up)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*_COMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "check")  # `secl src/` is `secl check src/`, as with ruff
    args = _parser(argv[0]).parse_args(argv)
    from secl.collector import collecting_less

    try:
        with _output(args), collecting_less():
            return _command(args)
    except BrokenPipeError:
        return EXIT_CLEAN
    except KeyboardInterrupt:
        return 130
    except _UsageError as err:
        print(f"secl: error: {printable(str(err))}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # a bug in secl, not tied to one file: one line, exit 2
        _internal_error(err, args)
        return EXIT_ERROR


def _output(args):
    """Standard output for the command: as it is, the --output-file (written whole or not
    at all: a report cut short by an error is worse than none), or nothing (--silent)."""
    import contextlib

    if getattr(args, "silent", False):
        return _redirected(os.devnull)
    path = getattr(args, "output_file", None)
    return _report_file(path) if path else contextlib.nullcontext()


@_contextmanager
def _redirected(path: str):
    import contextlib

    with open(path, "w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
        yield


@_contextmanager
def _report_file(path: str):
    import contextlib
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".secl-report-", dir=directory)
    except OSError as err:
        raise _UsageError(f"--output-file {path}: {err.strerror or err}") from err
    try:
        with open(fd, "w", encoding="utf-8", newline="") as fh, contextlib.redirect_stdout(fh):
            yield
        try:
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, path)
        except OSError as err:
            raise _UsageError(f"--output-file {path}: {err.strerror or err}") from err
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _command(args) -> int:
    if args.command == "fix":
        from secl.fix import run_fix

        return run_fix(args)
    if args.command == "verify":
        from secl.verify import run_verify

        return run_verify(args)
    if args.command == "rule":
        return _rule(args)
    if args.command == "clean":
        return _clean(args)
    if args.command == "sections":
        return _sections(args)
    return _check(args)


def debugging(args) -> bool:
    """Whether to show tracebacks: `--verbose`, or SECL_DEBUG set (to anything but 0)."""
    return bool(getattr(args, "verbose", False)) or os.environ.get("SECL_DEBUG", "0") not in (
        "",
        "0",
    )


def _internal_error(err: Exception, args) -> None:
    import traceback

    from secl import __version__

    what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    if debugging(args):
        traceback.print_exception(err, file=sys.stderr)
    line = f"secl: internal error in secl {__version__}: {what}"
    hint = "" if debugging(args) else " (--verbose or SECL_DEBUG=1 shows the traceback)"
    print(printable(" ".join(line.split())) + hint, file=sys.stderr)


class _UsageError(Exception):
    pass


UsageError = _UsageError  # for the command modules (fix, verify)


def config_from_args(args):
    """The configuration for a command: files, then command-line overrides."""
    return _config(args)


def load_from_args(args, config):
    """Read what the command line names (paths, or standard input)."""
    return _load(args, config)


def report_problems(problems, args=None) -> None:
    _report_problems(problems, args)


def analyse(run):
    """The findings of the selected rules; a file the rules fail on is reported and skipped
    (see secl.api.isolating)."""
    from secl.analysis.run import run_rules
    from secl.api import isolating

    findings, run.project = isolating(run_rules, run.project, run.problems)
    return findings


def _config(args):
    from secl.config import (
        Config,
        ConfigError,
        find_config_file,
        find_project_root,
        load_config,
        validate_target,
    )

    try:
        if args.no_config:
            config = Config(root=find_project_root(args.paths[0] if args.paths else "."))
        else:
            start = args.paths[0] if args.paths else "."
            if getattr(args, "stdin_filename", None):
                start = args.stdin_filename
            path = args.config or find_config_file(start)
            config = load_config(path) if path else Config(root=find_project_root(start))
        changes: dict[str, object] = {}
        if getattr(args, "target_libbpf", None):
            changes["target_libbpf"] = validate_target(args.target_libbpf, "--target-libbpf")
        if getattr(args, "exclude", None):
            changes["exclude"] = config.exclude + tuple(args.exclude)
        if getattr(args, "skeleton_map", None):
            smap = dict(config.skeleton_map)
            given: dict[str, tuple[str, ...]] = {}
            for item in args.skeleton_map:
                name, sep, src = item.partition("=")
                if not sep or not name or not src:
                    raise _UsageError(f"--skeleton-map expects NAME=PATH, not {item!r}")
                given[name] = (*given.get(name, ()), src)  # repeated NAME: a linked skeleton
            smap.update(given)
            changes["skeleton_map"] = smap
        if getattr(args, "include_dir", None):
            changes["include_dirs"] = config.include_dirs + tuple(args.include_dir)
        if getattr(args, "define", None):
            changes["defines"] = config.defines + tuple(args.define)
        if getattr(args, "target_arch", None):
            from secl.parse.macros import known_arch, known_arches

            if known_arch(args.target_arch) is None:
                known = ", ".join(known_arches())
                raise _UsageError(f"--target-arch: unknown {args.target_arch!r} (known: {known})")
            changes["target_arch"] = args.target_arch
        if getattr(args, "compile_commands", None):
            changes["compile_commands"] = args.compile_commands
        if getattr(args, "loader", None):
            from secl.config import validate_loader

            changes["loader"] = validate_loader(args.loader, "--loader")
        for key in ("kernel_functions", "kprobe_blacklist"):
            value = getattr(args, key, None)
            if value is not None:
                if value != "host" and not os.path.isfile(value):
                    option = "--" + key.replace("_", "-")
                    raise _UsageError(f'{option} {value}: no such file (or "host")')
                changes[key] = value
        if getattr(args, "no_cache", False):
            changes["cache"] = False
        if getattr(args, "jobs", None):
            changes["jobs"] = args.jobs
        for key in ("select", "extend_select", "ignore"):
            value = getattr(args, key, None)
            if value is not None:
                codes = tuple(c.strip() for c in value.split(",") if c.strip())
                from secl.config import is_code_selector

                for code in codes:
                    if not is_code_selector(code):
                        raise _UsageError(f"--{key.replace('_', '-')}: {code!r} is not a rule code")
                changes[key] = codes
        return config.with_overrides(**changes)
    except ConfigError as err:
        raise _UsageError(str(err)) from err


def _clean(args) -> int:
    """`secl clean`: remove the results cache of the project, and nothing else."""
    from secl.cache import clean, location
    from secl.config import find_project_root

    config = _config(args)
    root = find_project_root(args.paths[0] if args.paths else ".")
    directory = location(config, root)
    if clean(directory):
        print(f"Removed the results cache {printable(directory)}")
    elif os.path.exists(directory):
        print(f"secl: {printable(directory)} is not a secl results cache; left alone",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    else:
        print(f"No results cache at {printable(directory)}")
    return EXIT_CLEAN


def _report_problems(problems, args=None) -> None:
    show = debugging(args)
    for problem in problems:
        print(printable(str(problem)), file=sys.stderr)
        if show and problem.detail:
            print(problem.detail.rstrip("\n"), file=sys.stderr)


def _load(args, config):
    from secl.api import load, load_stdin

    if getattr(args, "stdin_filename", None):
        if args.paths:
            raise _UsageError("--stdin-filename reads standard input; give no PATH")
        return load_stdin(args.stdin_filename, sys.stdin.buffer.read(), config)
    return load(args.paths or ["."], config)


def read_run(args):
    """The run the command line asks for, its file problems reported; None when nothing
    could be read at all (exit 2)."""
    run = _load(args, _config(args))
    if getattr(args, "verbose", False):
        for pattern in run.unmatched_excludes:
            print(f"secl: exclude pattern {printable(pattern)!r} matched nothing", file=sys.stderr)
    _report_problems(run.problems, args)
    run.reported_problems = len(run.problems)
    if run.linted == 0 and run.problems:
        print("secl: error: nothing could be linted", file=sys.stderr)
        return None
    return run


def finish(run, args, code: int) -> int:
    """The exit code once the output is written: the problems that came up after reading
    (a file the analysis failed on) are reported, and an internal error makes it 2."""
    late = run.problems[run.reported_problems :]
    _report_problems(late, args)
    run.reported_problems = len(run.problems)
    return EXIT_ERROR if run.internal_errors else code


_read = read_run


def _check(args) -> int:
    run = read_run(args)
    if run is None:
        return EXIT_ERROR
    findings = analyse(run)
    if args.fix or args.diff:
        from secl.fix import apply_fixes

        return finish(run, args, apply_fixes(run, findings, args))
    if args.statistics:
        _statistics(findings, _catalogue())
    else:
        out = _render(run, findings, args.output_format, summary=not _quiet(args))
        if out:
            sys.stdout.write(out)
    code = EXIT_FINDINGS if findings and not args.exit_zero else EXIT_CLEAN
    return finish(run, args, code)


def _quiet(args) -> bool:
    return bool(getattr(args, "quiet", False) or getattr(args, "silent", False))


def _render(run, findings, output_format: str, *, summary: bool = True) -> str:
    """The report; if rendering fails on a finding, that finding's file is reported as an
    internal error and its findings are left out."""
    from secl.api import internal_error
    from secl.report import render

    def text(selected) -> str:
        return render(
            selected, output_format, sources=run.project.files, rules=_catalogue,
            root=run.project.root, summary=summary,
        )  # fmt: skip

    try:
        return text(findings)
    except Exception:
        failed: dict[str, Exception] = {}
        for finding in findings:
            if finding.path in failed:
                continue
            try:
                text([finding])
            except Exception as err:  # a bug in secl: the file is skipped, the run goes on
                failed[finding.path] = err
        if not failed:
            raise
        run.problems.extend(internal_error(path, err) for path, err in failed.items())
        return text([f for f in findings if f.path not in failed])


def _catalogue():
    # The catalogue module (and the TOML reader) only for the formats that show rule text.
    from secl.catalogue import load_catalogue

    return load_catalogue()


def _statistics(findings, rules) -> None:
    from collections import Counter

    counts = Counter(f.code for f in findings)
    fixable = Counter(f.code for f in findings if f.fix and f.fix.applicability == "safe")
    for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        mark = "[*]" if fixable[code] else "   "
        name = rules[code].name if code in rules else ""
        print(f"{count:5}\t{code}\t{mark} {name}")


def _sections(args) -> int:
    from secl.analysis.inventory import build_inventory
    from secl.api import isolating
    from secl.report.inventory import render_inventory

    run = read_run(args)
    if run is None:
        return EXIT_ERROR
    entries, run.project = isolating(build_inventory, run.project, run.problems)
    sys.stdout.write(render_inventory(entries, args.output_format, sources=run.project.files))
    return finish(run, args, EXIT_CLEAN)


def _rule(args) -> int:
    import json

    from secl.catalogue import load_catalogue

    rules = load_catalogue()
    if args.all:
        if args.output_format == "json":
            print(json.dumps([_rule_json(r) for r in rules.values()], indent=2))
        else:
            width = max(len(r.name) for r in rules.values())
            severity = max(len(r.severity) for r in rules.values())
            for r in rules.values():
                default = "" if r.default_selected else "  (not selected by default)"
                print(f"{r.code}  {r.name:{width}}  {r.severity:{severity}}  {r.summary}{default}")
        return EXIT_CLEAN
    if not args.code:
        raise _UsageError("give a rule code or name (e.g. `secl rule SECL101`) or --all")
    # A code in any case, or a name, as ruff takes both.
    by_name = {r.name: r for r in rules.values()}
    r = rules.get(args.code.upper()) or by_name.get(args.code.strip().lower())
    if r is None:
        raise _UsageError(f"unknown rule {args.code!r}; `secl rule --all` lists them")
    if args.output_format == "json":
        print(json.dumps(_rule_json(r), indent=2))
        return EXIT_CLEAN
    print(f"# {r.name} ({r.code})\n")
    print(f"Severity: {r.severity}; selected by default: {'yes' if r.default_selected else 'no'}\n")
    print(f"{r.summary}.\n")
    print(r.explanation + "\n")
    if r.fix:
        print(f"## Fix\n\n{r.fix}\n")
    for ex in r.examples:
        title = "Bad" if ex.kind == "bad" else "Good"
        for name, text in ex.files.items():
            print(f"## {title}: {name}\n\n```c\n{text.rstrip()}\n```\n")
        for name, text in ex.objects.items():
            print(f"## {title}: {name}, compiled from\n\n```c\n{text.rstrip()}\n```\n")
    return EXIT_CLEAN


def _rule_json(r) -> dict[str, object]:
    return {
        "code": r.code,
        "name": r.name,
        "severity": r.severity,
        "summary": r.summary,
        "explanation": r.explanation,
        "fix": r.fix,
        "default_selected": r.default_selected,
    }


if __name__ == "__main__":
    os._exit(main())
