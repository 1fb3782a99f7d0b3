"""NuGet V3 handlers: the documents themselves are built in ``nugat.feed``."""
