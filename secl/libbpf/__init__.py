"""libbpf knowledge: the section table, a libbpf-exact matcher, suffix grammars and the
auto-upgrade predicate. Pure functions of a section string and a target libbpf."""

from secl.libbpf.table import (
    DataSection,
    RemovedSection,
    SectionDef,
    SectionMatch,
    SectionTable,
    Target,
    Version,
    data_section,
    did_you_mean,
    edit_distance,
    is_data_section,
    is_non_program_section,
    load_table,
    lookup_any,
    match,
    removed_name,
    strip_question_mark,
)

__all__ = [
    "DataSection",
    "RemovedSection",
    "SectionDef",
    "SectionMatch",
    "SectionTable",
    "Target",
    "Version",
    "data_section",
    "did_you_mean",
    "edit_distance",
    "is_data_section",
    "is_non_program_section",
    "load_table",
    "lookup_any",
    "match",
    "removed_name",
    "strip_question_mark",
]
