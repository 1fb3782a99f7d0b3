"""NuGet V3 resources: each module builds one resource's documents from package rows."""
