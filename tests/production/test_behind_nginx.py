"""nugat behind nginx with the documented configuration (docs/nginx/nugat.conf): the real NuGet client
pushes through nginx to nugat and restores from the files nginx serves straight from the data folder."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from production.helpers import push, running_nginx
from support.nugetexe import NuGetClient, installed_packages
from support.server import NugatServer, free_port, running_server, user_key
from support.zips import package

pytestmark = pytest.mark.e2e

NGINX_ETAG = re.compile(r'^(W/)?"[0-9a-f]+-[0-9a-f]+"$')  # nginx's "<mtime>-<size>" (weak when gzipped)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NugatServer, str]]:
    port = free_port()
    env = {"NUGAT_PUBLIC_URL": f"http://127.0.0.1:{port}", "NUGAT_TRUST_FORWARDED": "true"}
    with (
        running_server(tmp_path_factory.mktemp("behind-nginx"), extra_env=env) as nugat,
        running_nginx(tmp_path_factory.mktemp("nginx"), nugat, port) as url,
    ):
        yield nugat, url


def served_by_nginx(resp: httpx.Response) -> bool:
    return resp.status_code == 200 and bool(NGINX_ETAG.match(resp.headers.get("etag", "")))


def test_the_client_pushes_through_nginx_and_restores_from_static_files(
    proxied: tuple[NugatServer, str],
    nuget: NuGetClient,
    build_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    nugat, url = proxied
    key = user_key(nugat, "edge", ["push"])
    source = f"{url}/v3/index.json"
    for version in ("1.0.0", "1.1.0"):
        result = nuget.push(build_package("Edge.Lib", version), key, source)
        assert result.ok and "Your package was pushed" in result.output, result.output
    app = build_package("Edge.App", "2.0.0", [("Edge.Lib", "[1.0.0, )")])
    assert nuget.push(app, key, source).ok

    flat = httpx.get(f"{url}/v3/flatcontainer/edge.lib/index.json")
    assert served_by_nginx(flat) and flat.json() == {"versions": ["1.0.0", "1.1.0"]}
    assert flat.headers["cache-control"] == "public, max-age=60"
    reg = httpx.get(f"{url}/v3/registration-semver2/edge.app/index.json", headers={"accept-encoding": "gzip"})
    assert served_by_nginx(reg) and reg.headers["content-encoding"] == "gzip"
    assert reg.json()["@id"] == f"{url}/v3/registration-semver2/edge.app/index.json"  # absolute, as stored
    nupkg = httpx.get(f"{url}/v3/flatcontainer/edge.lib/1.0.0/edge.lib.1.0.0.nupkg")
    assert served_by_nginx(nupkg) and nupkg.headers["content-type"] == "application/octet-stream"
    assert nupkg.headers["cache-control"] == "public, max-age=31536000, immutable"

    result = nuget.install("Edge.App", "2.0.0", source=source, output_dir=tmp_path / "out")
    assert result.ok, result.output
    assert installed_packages(tmp_path / "out") == {"Edge.App.2.0.0", "Edge.Lib.1.0.0"}


def test_what_is_not_a_file_goes_to_nugat(proxied: tuple[NugatServer, str]) -> None:
    nugat, url = proxied
    key = user_key(nugat, "edge2", ["push"])
    assert push(nugat, key, package("Edge.Case", "1.0.0")).status_code == 201
    mixed = httpx.get(
        f"{url}/v3/flatcontainer/Edge.Case/index.json"
    )  # files are lower case; nugat is not picky
    assert mixed.status_code == 200 and not served_by_nginx(mixed) and mixed.json() == {"versions": ["1.0.0"]}
    assert httpx.get(f"{url}/v3/flatcontainer/edge.none/index.json").status_code == 404
    assert httpx.get(f"{url}/v3/flatcontainer/edge.case/1.0.0/.tmp-x").status_code == 404
    search = httpx.get(f"{url}/v3/search", params={"q": "Edge.Case"}).json()
    assert [d["id"] for d in search["data"]] == ["Edge.Case"]
    assert search["data"][0]["registration"].startswith(f"{url}/")
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
