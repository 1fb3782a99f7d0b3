"""NuGet protocol handlers: V3 resources (and the V2 publish routes the V3 index points at)."""
