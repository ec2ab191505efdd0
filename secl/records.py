"""Frozen record classes built faster (the hot ones of a run make thousands)."""

from __future__ import annotations

from dataclasses import MISSING, fields


def quick_init(cls: type) -> type:
    """Give a frozen, slotted dataclass an `__init__` that sets each slot directly, with the
    signature, defaults and behaviour of the one dataclass wrote: that one goes through
    `object.__setattr__` per field, which costs about twice as much. Classes with
    `__post_init__`, a default factory, keyword-only or non-init fields keep their own."""
    found = fields(cls)  # type: ignore[arg-type]
    if (
        "__post_init__" in vars(cls)
        or any(f.default_factory is not MISSING or not f.init or f.kw_only for f in found)
        or not all(f.name in vars(cls) for f in found)  # not slots of this very class
    ):
        return cls
    namespace: dict[str, object] = {}
    params, body = [], []
    for i, f in enumerate(found):
        namespace[f"_set{i}"] = vars(cls)[f.name].__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls
