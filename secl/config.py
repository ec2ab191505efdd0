"""`[tool.secl]` in the nearest pyproject.toml, or a .secl.toml, merged with the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from secl.files import DEFAULT_MAX_FILE_SIZE, upwards

PROJECT_MARKERS = ("pyproject.toml", ".secl.toml", ".git")
KEYS = {
    "select": list,
    "extend-select": list,
    "ignore": list,
    "per-file-ignores": dict,
    "exclude": list,
    "extend-exclude": list,
    "target-libbpf": str,
    "skeleton-map": dict,
    "compile-commands": str,
    "defines": list,
    "target-arch": str,
    "loaders": dict,
    "include-dirs": list,
    "max-file-size": (int, str),
    "objects": bool,
    "kernel-functions": str,
    "kprobe-blacklist": str,
    "cache-dir": str,
    "jobs": int,
}
# Build output, and vendored code (its BPF sources belong to the projects it was copied from;
# the loader walk skips the same directories: secl.loaders.discover.VENDOR_DIRS).
DEFAULT_EXCLUDE = ("build", "dist", "output", ".output", "out", "vendor", "third_party")


class ConfigError(Exception):
    """A configuration the user must fix: one line, naming the file and the key."""


@dataclass(frozen=True)
class Config:
    """The settings of a run: [tool.secl] / .secl.toml, then the command line."""

    path: str | None = None  # the file it came from
    root: str = "."
    select: tuple[str, ...] | None = None  # None: the default selection
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    target_libbpf: str = "upgrade"
    # skeleton or object name -> the BPF source(s) it is built from; several sources: a
    # skeleton linked from several objects (`bpftool gen object`). A plain string is one.
    skeleton_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compile_commands: str | None = None
    defines: tuple[str, ...] = ()
    target_arch: str | None = None
    # glob over a BPF source's path relative to the root -> loader kind (secl.loaders.KINDS)
    loaders: dict[str, str] = field(default_factory=dict)
    loader: str | None = None  # --loader: every BPF source is loaded by this kind
    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # bytes; larger sources are skipped
    objects: bool = True  # read compiled BPF objects (`*.o`) given or found in a walk
    # A kernel's tracefs available_filter_functions / debugfs kprobes/blacklist: a file, or
    # "host" for the running kernel's (secl/kernel.py).
    kernel_functions: str | None = None
    kprobe_blacklist: str | None = None
    cache_dir: str | None = None  # the results cache (None: .secl_cache at the root)
    cache: bool = True  # --no-cache: neither read nor write the results cache
    jobs: int | None = None  # parse processes (None: the CPUs this process may use)
    include_dirs: tuple[str, ...] = ()  # -I directories of the built-in preprocessor

    def __post_init__(self) -> None:
        # `skeleton_map={"x": "x.bpf.c"}` from callers that predate list values
        smap = self.skeleton_map
        if any(isinstance(v, str) for v in smap.values()):
            fixed = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in smap.items()}
            object.__setattr__(self, "skeleton_map", fixed)

    def skeleton_pairs(self) -> list[tuple[str, str]]:
        """(skeleton name, BPF source) for every source `skeleton-map` names."""
        return [(name, src) for name, srcs in self.skeleton_map.items() for src in srcs]

    def with_overrides(self, **changes: object) -> Config:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def find_project_root(start: str) -> str:
    """The nearest directory at or above `start` with pyproject.toml, .secl.toml or .git
    (else the directory of `start`)."""
    return project_root(start)[0]


def project_root(start: str) -> tuple[str, bool]:
    """(root, whether a project marker was found there)."""
    directories = upwards(start)
    for candidate in directories:
        if any(os.path.exists(os.path.join(candidate, m)) for m in PROJECT_MARKERS):
            return candidate, True
    return directories[0], False


def find_config_file(start: str) -> str | None:
    """The nearest .secl.toml, or pyproject.toml with a [tool.secl] table, at or above start.
    A pyproject.toml that may hold one but cannot be read as TOML is an error (ConfigError),
    not a reason to go on to a parent's configuration."""
    for candidate in upwards(start):
        secl_toml = os.path.join(candidate, ".secl.toml")
        if os.path.isfile(secl_toml):
            return secl_toml
        pyproject = os.path.join(candidate, "pyproject.toml")
        if os.path.isfile(pyproject):
            data = _read_config_bytes(pyproject)
            # A [tool.secl] table spells "secl": without it, tomllib (and the `typing` it
            # imports) is not worth its start-up time.
            if b"secl" not in data:
                continue
            if "secl" in _tool_table(_parse_toml(data, pyproject), pyproject):
                return pyproject
    return None


# Configuration files are small: a larger one is a wrong path (and /dev/zero never ends).
MAX_CONFIG_SIZE = 4 * 1024 * 1024


def _read_config_bytes(path: str) -> bytes:
    from secl.files import FileProblem, read

    source = read(path, MAX_CONFIG_SIZE)
    if isinstance(source, FileProblem):
        raise ConfigError(f"{path}: cannot read: {source.message.removesuffix('; skipped')}")
    return source.data


def _parse_toml(data: bytes, path: str) -> dict[str, object]:
    """The TOML document, or a ConfigError naming the file and the line."""
    if not data.strip(b" \t\n"):
        return {}  # an empty file (a project marker): nothing to parse, tomllib not loaded
    import re
    import tomllib  # only when there is a file to read: it costs start-up time

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: invalid TOML: not valid UTF-8") from err
    except tomllib.TOMLDecodeError as err:
        # tomllib ends its message with "(at line L, column C)" or "(at end of document)"
        # (Python 3.11-3.13).
        message = str(err)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where is not None:
            position = f"{where.group(1)}:{where.group(2)}"
        elif (where := re.search(r"\s*\(at end of document\)$", message)) is not None:
            position = str(data.count(b"\n") + (not data.endswith(b"\n")))
        else:
            raise ConfigError(f"{path}: invalid TOML: {message}") from err
        message = message[: where.start()]
        raise ConfigError(f"{path}:{position}: invalid TOML: {message}") from err


def _tool_table(document: dict[str, object], path: str) -> dict[str, object]:
    """The document's [tool] table ({} without one); a `tool` that is no table is an error."""
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: `tool` must be a table")
    return tool


def load_config(path: str) -> Config:
    raw = _parse_toml(_read_config_bytes(path), path)
    if path.endswith(".secl.toml"):
        table = raw
        # A .secl.toml may also be written with a [tool.secl] header.
        tool = raw.get("tool")
        if isinstance(tool, dict) and "secl" in tool:
            table = tool["secl"]
            where = "[tool.secl]"
        else:
            where = "the file"
    else:
        table = _tool_table(raw, path).get("secl", {})
        where = "[tool.secl]"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where} must be a table, not {_toml_type(table)}")
    return parse_table(table, path)


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "a date or time" if not isinstance(value, dict) else "a table"


def parse_table(table: dict[str, object], path: str) -> Config:
    root = os.path.dirname(os.path.abspath(path))
    values: dict[str, object] = {}
    for key, value in table.items():
        expected = KEYS.get(key)
        if expected is None:
            known = ", ".join(sorted(KEYS))
            raise ConfigError(f"{path}: unknown key `{key}` in [tool.secl] (known: {known})")
        if key == "max-file-size":
            values[key] = parse_size(value, f"{path}: `max-file-size`")
            continue
        if not isinstance(value, expected):
            raise ConfigError(f"{path}: `{key}` must be a {expected.__name__}")
        values[key] = value
    cfg = Config(path=path, root=root)
    if "select" in values:
        cfg = replace(cfg, select=_codes(values["select"], "select", path))
    if "extend-select" in values:
        cfg = replace(cfg, extend_select=_codes(values["extend-select"], "extend-select", path))
    if "ignore" in values:
        cfg = replace(cfg, ignore=_codes(values["ignore"], "ignore", path))
    if "per-file-ignores" in values:
        pfi = {}
        for pattern, codes in values["per-file-ignores"].items():  # type: ignore[union-attr]
            if not isinstance(codes, list):
                raise ConfigError(f"{path}: `per-file-ignores.{pattern}` must be a list of codes")
            pfi[pattern] = _codes(codes, f"per-file-ignores.{pattern}", path)
        cfg = replace(cfg, per_file_ignores=pfi)
    if "exclude" in values:
        cfg = replace(cfg, exclude=tuple(_strings(values["exclude"], "exclude", path)))
    if "extend-exclude" in values:
        extra = _strings(values["extend-exclude"], "extend-exclude", path)
        cfg = replace(cfg, exclude=cfg.exclude + tuple(extra))
    if "target-libbpf" in values:
        cfg = replace(cfg, target_libbpf=validate_target(str(values["target-libbpf"]), path))
    if "skeleton-map" in values:
        smap = values["skeleton-map"]
        assert isinstance(smap, dict)
        mapped: dict[str, tuple[str, ...]] = {}
        for name, src in smap.items():
            sources = [src] if isinstance(src, str) else src
            if not isinstance(sources, list) or not sources:
                raise ConfigError(
                    f"{path}: `skeleton-map.{name}` must be a path string or a list of them"
                )
            for one in sources:
                if not isinstance(one, str):
                    raise ConfigError(
                        f"{path}: `skeleton-map.{name}` must be a path string or a list of them"
                    )
            mapped[name] = tuple(os.path.join(root, one) for one in sources)
        cfg = replace(cfg, skeleton_map=mapped)
    if "compile-commands" in values:
        cfg = replace(cfg, compile_commands=os.path.join(root, str(values["compile-commands"])))
    if "defines" in values:
        cfg = replace(cfg, defines=tuple(_strings(values["defines"], "defines", path)))
    if "target-arch" in values:
        cfg = replace(cfg, target_arch=str(values["target-arch"]))
    if "include-dirs" in values:
        dirs = _strings(values["include-dirs"], "include-dirs", path)
        cfg = replace(cfg, include_dirs=tuple(os.path.join(root, d) for d in dirs))
    if "loaders" in values:
        table = values["loaders"]
        assert isinstance(table, dict)
        for pattern, kind in table.items():
            validate_loader(kind, f"{path}: `loaders.{pattern}`")
        cfg = replace(cfg, loaders=dict(table))
    if "max-file-size" in values:
        cfg = replace(cfg, max_file_size=values["max-file-size"])
    if "objects" in values:
        cfg = replace(cfg, objects=values["objects"])
    for key in ("kernel-functions", "kprobe-blacklist"):
        if key in values:
            value = str(values[key])
            where = value if value == "host" else os.path.join(root, value)
            cfg = replace(cfg, **{key.replace("-", "_"): where})
    if "cache-dir" in values:
        cfg = replace(cfg, cache_dir=os.path.join(root, str(values["cache-dir"])))
    if "jobs" in values:
        cfg = replace(cfg, jobs=parse_jobs(values["jobs"], f"{path}: `jobs`"))
    return cfg


def parse_jobs(value: object, origin: str) -> int:
    """A number of parse processes: 1 or more (1 parses in the one process)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{origin} must be a whole number of processes, 1 or more")
    return value


def validate_loader(kind: object, origin: str) -> str:
    """A loader kind a user may name: any of secl.loaders.KINDS but `libbpf-assumed`."""
    from secl.loaders import KINDS, LIBBPF_ASSUMED

    allowed = [k for k in KINDS if k != LIBBPF_ASSUMED]
    if not isinstance(kind, str) or kind not in allowed:
        raise ConfigError(f"{origin} must be one of {', '.join(allowed)}, not {kind!r}")
    return kind


_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
_SIZE_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3})


def parse_size(value: object, origin: str) -> int:
    """A size in bytes: a positive integer, or a string such as "64MiB", "100 MB", "1G"."""
    import re

    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (
        m := re.fullmatch(r"\s*(\d+)\s*([kmg](?:i?b)?|b)?\s*", value, re.IGNORECASE)
    ):
        unit = (m.group(2) or "").lower()
        unit = unit if unit.endswith("ib") else unit.removesuffix("b")
        size = int(m.group(1)) * _SIZE_UNITS[unit]
    else:
        raise ConfigError(f'{origin} must be a number of bytes or a size such as "64MiB"')
    if size <= 0:
        raise ConfigError(f"{origin} must be more than 0 bytes")
    return size


def validate_target(value: str, origin: str) -> str:
    import re

    if value == "upgrade" or re.fullmatch(r"\d+\.\d+(\.\d+)?", value):
        return value
    raise ConfigError(
        f'{origin}: `target-libbpf` must be "upgrade" or a libbpf version such as "1.7", '
        f"not {value!r}"
    )


def _strings(value: object, key: str, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: `{key}` must be a list of strings")
    return list(value)


def _codes(value: object, key: str, path: str) -> tuple[str, ...]:
    codes = _strings(value, key, path)
    for code in codes:
        if not is_code_selector(code):
            raise ConfigError(f"{path}: `{key}`: {code!r} is not a rule code or prefix")
    return tuple(codes)


def is_code_selector(code: str) -> bool:
    import re

    return code == "ALL" or re.fullmatch(r"SECL\d{0,3}", code) is not None


def selected(code: str, cfg: Config, path: str | None = None) -> bool:
    """ruff's selection: the most specific matching selector wins; ignore beats select at
    equal specificity."""
    from secl.families import FAMILIES

    def best(selectors: tuple[str, ...]) -> int:
        lengths = [
            0 if s == "ALL" else len(s) for s in selectors if s == "ALL" or code.startswith(s)
        ]
        return max(lengths) if lengths else -1

    select = (
        cfg.select
        if cfg.select is not None
        else tuple(prefix for prefix, (_, _, default) in FAMILIES.items() if default)
    )
    sel = max(best(select), best(cfg.extend_select))
    ignores = cfg.ignore
    if path is not None and cfg.per_file_ignores:
        ignores = ignores + per_file_codes(path, cfg)
    ign = best(ignores)
    return sel >= 0 and sel > ign


def per_file_codes(path: str, cfg: Config) -> tuple[str, ...]:
    import fnmatch

    rel = os.path.relpath(os.path.abspath(path), cfg.root).replace(os.sep, "/")
    codes: list[str] = []
    for pattern, pcodes in cfg.per_file_ignores.items():
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
            codes.extend(pcodes)
    return tuple(codes)
