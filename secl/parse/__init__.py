"""tree-sitter-c turns source bytes into facts."""
