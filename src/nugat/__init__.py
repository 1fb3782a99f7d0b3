"""nugat: a self-hosted NuGet package registry with scoped API keys."""
