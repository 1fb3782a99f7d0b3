"""End to end with the real nuget.exe 4.7.1: a package that holds a valid API key is refused with 400
"The package contains an API key", and that key is revoked (npm does the same); the reason reaches the
client's output. Once per database."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from support.nugetexe import NuGetClient
from support.server import NugatServer, user_key

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True, scope="module"),
]


def test_a_package_holding_a_key_is_refused_and_the_key_revoked(
    server: NugatServer, nuget: NuGetClient, build_package: Callable[..., Path], tmp_path: Path
) -> None:
    pusher = user_key(server, "leakpusher", ["push"], globs=["*"])
    leaked = user_key(server, "leakowner", ["push"], globs=["*"])
    clean = build_package("Leaky.Settings", "1.0.0")
    dirty = tmp_path / clean.name
    shutil.copy(clean, dirty)
    with zipfile.ZipFile(dirty, "a") as z:
        z.writestr("content/appsettings.json", json.dumps({"NuGet": {"ApiKey": leaked}}))

    result = nuget.push(dirty, pusher, server.source)
    assert result.returncode != 0, result.output
    assert "Response status code does not indicate success: 400" in result.output, result.output
    assert "The package contains an API key" in result.output, result.output

    keys = json.loads(server.cli("key", "list", "--user", "leakowner", "--json", check=True).stdout)
    assert [(k["id"], k["state"]) for k in keys] == [(leaked.split("_")[1], "revoked")]  # listed, dead
    events = json.loads(server.cli("audit", "--user", "leakowner", "--json", check=True).stdout)
    assert any(e["action"] == "key.revoke" for e in events)
    # The pusher's own key was not in the package: it still pushes the clean package.
    assert nuget.push(clean, pusher, server.source).returncode == 0
