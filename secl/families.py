"""The rule families: what each code prefix means, its severity, whether it is selected by
default. Its own module so that selecting rules does not load the catalogue."""

FAMILIES = {
    "SECL0": ("notes about the input", "info", False),
    "SECL1": (
        "section names libbpf rejects, mis-parses, or that need a newer libbpf",
        "error",
        True,
    ),
    "SECL2": ("programs the kprobe/uprobe auto-upgrade breaks (need `.single`)", "warning", True),
    "SECL3": ("behaviour that changes or is uncertain under the upgrade", "info", False),
}
