"""Hostile input and faults: every refusal clear, nothing stored, nothing leaked (issue 6)."""
