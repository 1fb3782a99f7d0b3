"""nugat behind nginx with the documented configuration (docs/nginx/nugat.conf): the real NuGet client
pushes through nginx to nugat and restores from the files nginx serves straight from the data folder."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from production.helpers import push, running_nginx
from support.hostile_files import file_paths, hostile_package
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
    # A document's previous version, kept beside it by a rewrite (storage/filesystem.py), is never served.
    assert push(nugat, key, package("Edge.Case", "1.1.0")).status_code == 201
    storage = nugat.data_dir / "storage/v3"
    spares = [p for p in storage.rglob(".*.old") if "edge.case" in str(p)]
    assert spares, sorted(str(p) for p in storage.rglob("*edge.case*"))
    for spare in spares:
        answer = httpx.get(f"{url}/{spare.relative_to(nugat.data_dir / 'storage')}")
        assert answer.status_code == 404 and not served_by_nginx(answer), spare
    search = httpx.get(f"{url}/v3/search", params={"q": "Edge.Case"}).json()
    assert [d["id"] for d in search["data"]] == ["Edge.Case"]
    assert search["data"][0]["registration"].startswith(f"{url}/")
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}


def test_package_files_from_nginx_are_locked_down_as_from_nugat(proxied: tuple[NugatServer, str]) -> None:
    """Issue 10, item 1: what nginx serves from the data folder carries the headers nugat sends, and a
    type no browser runs script in; icons (PNG or JPEG by their bytes) are left to nugat."""
    nugat, url = proxied
    key = user_key(nugat, "edge3", ["push"])
    assert push(nugat, key, hostile_package("Edge.Hostile")).status_code == 201
    types = {
        "nuspec": "application/octet-stream",
        "nupkg": "application/octet-stream",
        "readme": "text/plain; charset=utf-8",
        "license": "text/plain; charset=utf-8",
        "icon": "image/png",
        "flat index": "application/json",
        "registration": "application/json",
    }
    for name, path in file_paths("Edge.Hostile").items():
        resp = httpx.get(url + path, headers={"accept-encoding": "gzip"})
        assert resp.status_code == 200, (name, resp.status_code)
        assert served_by_nginx(resp) is (name not in ("icon", "leaf")), name
        assert resp.headers.get_list("x-content-type-options") == ["nosniff"], name
        assert resp.headers.get_list("content-security-policy") == ["default-src 'none'; sandbox"], name
        assert len(resp.headers.get_list("cache-control")) == 1, name
        if name in types:
            assert resp.headers["content-type"] == types[name], name
        if name == "nuspec":
            assert resp.headers["content-disposition"].startswith("attachment"), name
    missing = httpx.get(f"{url}/v3/flatcontainer/edge.hostile/9.9.9/edge.hostile.nuspec")
    assert missing.status_code == 404 and missing.headers["x-content-type-options"] == "nosniff"


def test_after_a_machine_crash_nginx_leaves_documents_to_nugat_until_they_are_rebuilt(
    proxied: tuple[NugatServer, str],
) -> None:
    """Documents a crash of the machine emptied or set back are not served from the disk: while nugat
    rebuilds them (``storage/.stale-documents``), nginx sends document requests to nugat, which rebuilds
    an id before serving it. Held here (``NUGAT_FAULT=catch-up``), then let go."""
    nugat, url = proxied
    key = user_key(nugat, "edge4", ["push"])
    storage = nugat.data_dir / "storage"
    flat = storage / "v3/flatcontainer/edge.crash/index.json"
    assert push(nugat, key, package("Edge.Crash", "1.0.0")).status_code == 201
    older = flat.read_bytes()
    assert push(nugat, key, package("Edge.Crash", "2.0.0")).status_code == 201
    nugat.stop()
    flat.write_bytes(older)  # as a rename that never reached the disk leaves it
    (storage / "v3/registration/edge.crash/index.json").write_bytes(b"")  # data that never reached it
    (storage / ".unsynced").write_text("a-boot-before-the-crash\n")
    nugat.env["NUGAT_FAULT"] = "catch-up:60"
    try:
        nugat.start()
        assert (storage / ".stale-documents").is_file()
        listed = httpx.get(f"{url}/v3/flatcontainer/edge.crash/index.json")
        assert not served_by_nginx(listed) and listed.json() == {"versions": ["1.0.0", "2.0.0"]}
        reg = httpx.get(f"{url}/v3/registration/edge.crash/index.json").json()
        assert [i["catalogEntry"]["version"] for p in reg["items"] for i in p["items"]] == ["1.0.0", "2.0.0"]
        nupkg = httpx.get(f"{url}/v3/flatcontainer/edge.crash/2.0.0/edge.crash.2.0.0.nupkg")
        assert served_by_nginx(nupkg)  # packages are durable: nginx goes on serving them
    finally:
        nugat.stop()
        del nugat.env["NUGAT_FAULT"]
        nugat.start()
    deadline = time.monotonic() + 30
    while (storage / ".stale-documents").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (storage / ".stale-documents").exists()  # every id rebuilt: nginx serves them again
    listed = httpx.get(f"{url}/v3/flatcontainer/edge.crash/index.json")
    assert served_by_nginx(listed) and listed.json() == {"versions": ["1.0.0", "2.0.0"]}
