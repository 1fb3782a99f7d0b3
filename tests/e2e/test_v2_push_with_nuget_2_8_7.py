"""End to end: Debian's legacy ``nuget`` 2.8.7 pushes to the V2 feed root (``PUT /api/v2/``) and deletes
below it (``DELETE /api/v2/ID/VERSION``), as NuGet.Server accepts, and nugat takes these exactly as a push
to ``/api/v2/package/`` and an unlist."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.nugetexe import LegacyNuGetClient, NuGetExeMissing
from support.server import NugatServer

pytestmark = [
    pytest.mark.e2e,
    # The route and the upload parser are the same on every database and storage (seconds of mono each).
    pytest.mark.parametrize("server", ["sqlite"], indirect=True, scope="module"),
]


@pytest.fixture
def legacy(tmp_path: Path) -> LegacyNuGetClient:
    try:
        return LegacyNuGetClient(tmp_path / "nuget-2.8.7-home")
    except NuGetExeMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def test_nuget_2_8_7_pushes_to_the_v2_feed_root(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
) -> None:
    key = user_key(server, "legacy", ["push"], globs=["Legacy.*"])
    first = build_package("Legacy.Root", "1.0.0")
    pushed = legacy.push(first, key, f"{server.url}/api/v2/")
    assert pushed.ok and "Your package was pushed." in pushed.output, pushed.output
    # and without the trailing slash (the client then sends PUT /api/v2)
    assert legacy.push(build_package("Legacy.Root", "1.1.0"), key, f"{server.url}/api/v2").ok

    assert server.get_json("/v3/flatcontainer/legacy.root/index.json") == {"versions": ["1.0.0", "1.1.0"]}
    stored = server.get("/v3/flatcontainer/legacy.root/1.0.0/legacy.root.1.0.0.nupkg")
    assert stored.content == first.read_bytes()  # byte for byte (2.8.7 ends its multipart body oddly)
    assert server.get("/api/v2/").headers["content-type"].startswith("application/xml")  # still the feed

    # Refusals are those of /api/v2/package/ too: the same version again, a key for other ids.
    again = legacy.push(first, key, f"{server.url}/api/v2/")
    assert again.returncode != 0 and "(409) Conflict" in again.output, again.output
    other = user_key(server, "legacy", ["push"], globs=["Other.*"])
    refused = legacy.push(build_package("Legacy.Root", "2.0.0"), other, f"{server.url}/api/v2/")
    assert refused.returncode != 0 and "(403) Forbidden" in refused.output, refused.output
    assert server.get_json("/v3/flatcontainer/legacy.root/index.json") == {"versions": ["1.0.0", "1.1.0"]}


def test_nuget_2_8_7_delete_unlists_below_the_feed_root(
    server: NugatServer,
    legacy: LegacyNuGetClient,
    build_package: Callable[..., Path],
    user_key: Callable[..., str],
) -> None:
    pusher = user_key(server, "legacy2", ["push"], globs=["Legacy.Gone"])
    assert legacy.push(build_package("Legacy.Gone", "1.0.0"), pusher, f"{server.url}/api/v2/").ok
    # A key without the unlist scope is refused, and the version stays listed.
    refused = legacy.delete("Legacy.Gone", "1.0.0", pusher, f"{server.url}/api/v2/")
    assert refused.returncode != 0 and "(403) Forbidden" in refused.output, refused.output
    assert server.get_json("/v3/search?q=packageid:Legacy.Gone")["totalHits"] == 1

    unlister = user_key(server, "legacy2", ["unlist"], globs=["Legacy.Gone"])
    deleted = legacy.delete("Legacy.Gone", "1.0.0", unlister, f"{server.url}/api/v2/")
    assert deleted.ok and "Legacy.Gone 1.0.0 was deleted successfully." in deleted.output, deleted.output
    assert server.get_json("/v3/search?q=packageid:Legacy.Gone")["totalHits"] == 0  # unlisted
    # still restorable by its exact version, as an unlisted package is
    assert server.get("/v3/flatcontainer/legacy.gone/1.0.0/legacy.gone.1.0.0.nupkg").status_code == 200
