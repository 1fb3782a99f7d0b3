"""Bounded fuzzing: the package reader, the glob matcher and the JSON endpoints (issue 6)."""
