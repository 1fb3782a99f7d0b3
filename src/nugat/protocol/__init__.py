"""NuGet protocol: V3 resources (and the V2 publish routes the V3 index points at)."""

BASE = "@@NUGAT_BASE@@"
"""Stands for the feed's absolute base URL in stored documents; replaced when a document is served."""
