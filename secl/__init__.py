"""secl: a static linter for BPF section names."""

__version__ = "0.1.0"
