"""The NuGet V2 (OData/Atom) subset official clients send: ``nuget list``, V2 restore, PowerShellGet."""
