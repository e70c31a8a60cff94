"""Partition log: segments, indexes, roll, retention, compaction, truncation, recovery."""
