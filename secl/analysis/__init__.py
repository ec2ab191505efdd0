"""Join facts across files into a project model and run the rules (pure functions)."""
