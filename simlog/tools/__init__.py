"""Command-line tools that read real files (kept out of the I/O-free core)."""
