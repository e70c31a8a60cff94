"""Small node programs written against simlog.runtime only (conformance, demos)."""
