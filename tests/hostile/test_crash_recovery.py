"""kill -9 the server in the middle of a push, at several points; after a restart the package is there
entirely or not at all (no orphan blob, no row without its blob, no temp file), and pushing it again works.

The points inside a push are reached with the test-only hook ``NUGAT_FAULT=<point>:<seconds>``
(``nugat.faults``): the push waits there, the test sees it in the log and kills the process group.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from hostile.harness import DATABASES, Feed, started, wait_until
from support.server import NugatServer, user_key
from support.zips import incompressible, package

PAUSE = 60  # seconds a faulted push waits; far longer than the test needs to kill it


@pytest.fixture(scope="module", params=DATABASES)
def feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    with started(tmp_path_factory, "crash", request.param, {}) as server:
        feed = Feed(server, user_key(server, "alice", ["push"]))
        yield feed
        feed.close()


def restart(server: NugatServer, fault: str | None) -> None:
    server.stop()
    server.env.pop("NUGAT_FAULT", None)
    if fault is not None:
        server.env["NUGAT_FAULT"] = f"{fault}:{PAUSE}"
    server.start()


def blobs_of(feed: Feed, id_lower: str) -> list[str]:
    storage = feed.server.data_dir / "storage"
    return sorted(
        str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file() and f"/{id_lower}/" in f"/{p}/"
    )


def partial_files(feed: Feed) -> list[str]:
    """Half-written files anywhere in the data folder: temp uploads and storage temp files."""
    tmp = [p.name for p in feed.temp_files()]
    return tmp + [p.name for p in (feed.server.data_dir / "storage").rglob(".tmp-*")]


def assert_absent(feed: Feed, package_id: str) -> None:
    id_lower = package_id.lower()
    assert feed.versions(package_id) == []
    assert feed.rows("SELECT count(*) FROM package_registrations WHERE id_lower = :i", i=id_lower) == [(0,)]
    assert blobs_of(feed, id_lower) == []
    assert feed.server.get(f"/v3/flatcontainer/{id_lower}/index.json").status_code == 404


def assert_present(feed: Feed, package_id: str, version: str, body: bytes) -> None:
    id_lower = package_id.lower()
    assert feed.versions(package_id) == [version]
    assert feed.server.get_json(f"/v3/flatcontainer/{id_lower}/index.json") == {"versions": [version]}
    nupkg = feed.server.get(f"/v3/flatcontainer/{id_lower}/{version}/{id_lower}.{version}.nupkg")
    assert nupkg.status_code == 200
    assert hashlib.sha256(nupkg.content).digest() == hashlib.sha256(body).digest()
    leaf = feed.server.get_json(f"/v3/registration/{id_lower}/index.json")
    assert [item["catalogEntry"]["version"] for page in leaf["items"] for item in page["items"]] == [version]


def assert_clean(feed: Feed) -> None:
    assert partial_files(feed) == []
    assert feed.rows("SELECT count(*) FROM pending_uploads") == [(0,)]


def push_in_background(feed: Feed, body: bytes) -> threading.Thread:
    def push() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
            feed.push(body)

    thread = threading.Thread(target=push)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("point", "survives"),
    [
        ("in-transaction", False),
        ("after-blob-write", False),
        ("after-documents", False),  # the documents list the version, which is not committed
        ("after-commit", True),
    ],
)
def test_kill_during_a_push(feed: Feed, point: str, survives: bool) -> None:
    package_id = f"Crash.{point.title().replace('-', '')}"
    body = package(package_id, payload=incompressible(200_000))
    restart(feed.server, fault=point)
    marker = f"fault injection: pausing {PAUSE} seconds at {point}"
    thread = push_in_background(feed, body)
    wait_until(lambda: marker in feed.server.log_tail(20), 30, f"the push to reach {point}")
    if point == "after-blob-write":  # the moment that matters: the blob is stored, the row is not committed
        assert f"{package_id.lower()}.1.0.0.nupkg" in " ".join(blobs_of(feed, package_id.lower()))
    feed.server.kill()
    thread.join(timeout=30)
    restart(feed.server, fault=None)

    if survives:
        assert_present(feed, package_id, "1.0.0", body)
        assert feed.push(body).status_code == 409
    else:
        assert_absent(feed, package_id)
        assert_clean(feed)
        assert feed.push(body).status_code == 201
        assert_present(feed, package_id, "1.0.0", body)
    assert_clean(feed)


def test_kill_while_the_upload_streams(feed: Feed) -> None:
    package_id = "Crash.Streaming"
    body = package(package_id, payload=incompressible(400_000))
    host, port = feed.server.url.removeprefix("http://").split(":")
    head = (
        f"PUT /api/v2/package HTTP/1.1\r\nHost: {host}:{port}\r\nX-NuGet-ApiKey: {feed.key}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
        wait_until(lambda: feed.temp_files() != [], 10, "the upload to reach the temp folder")
        feed.server.kill()
    assert feed.temp_files() != []  # what the crash left behind...
    restart(feed.server, fault=None)
    assert_clean(feed)  # ...is gone after the restart
    assert "1 abandoned uploads" in feed.server.log_tail(30)
    assert_absent(feed, package_id)
    assert feed.push(body).status_code == 201
    assert_present(feed, package_id, "1.0.0", body)


def lose_documents_with_the_machine(feed: Feed, aged: tuple[str, bytes] | None = None) -> None:
    """Stop the server, and leave its documents as a crash of the machine may: ``crash.powerloss``'s
    lost or empty, ``aged``'s flat index (key, bytes) back to an older content; and the marker of a boot
    before the crash."""
    feed.server.stop()
    storage = feed.server.data_dir / "storage"
    lost = [
        storage / "v3/flatcontainer/crash.powerloss/index.json",
        storage / "v3/registration/crash.powerloss/index.json",
        storage / "v3/registration-semver2/crash.powerloss/index.json",
    ]
    lost[0].write_bytes(b"")  # as ext4 may leave a file whose data never reached the disk
    for path in lost[1:]:
        path.unlink()
    if aged is not None:
        (storage / aged[0]).write_bytes(aged[1])  # as a rename that never reached the disk leaves it
    (storage / ".unsynced").write_text("a-boot-before-the-crash\n")


def test_documents_lost_with_the_machine_are_rebuilt_while_serving(feed: Feed) -> None:
    """Documents are written without fsync (they derive from the database). A crash of the machine can
    lose them: the marker left by the earlier boot makes the next start mark every id stale, and serve
    at once while the workers rebuild them in the background."""
    package_id = "Crash.PowerLoss"
    body = package(package_id, payload=incompressible(10_000))
    assert feed.push(body).status_code == 201
    lose_documents_with_the_machine(feed)
    feed.server.start()
    assert "ids to rebuild while serving" in feed.server.log_tail(30)
    storage = feed.server.data_dir / "storage"
    wait_until(
        lambda: "every stale document is rebuilt" in feed.server.log_tail(30), 30, "the background rebuild"
    )
    assert (storage / "v3/registration-semver2/crash.powerloss/index.json").is_file()  # nobody read it
    assert not (storage / ".unsynced").exists()  # the rebuilt documents were synced
    assert_present(feed, package_id, "1.0.0", body)
    assert feed.server.get("/v3/registration-semver2/crash.powerloss/1.0.0.json").status_code == 200
    assert_clean(feed)


def test_a_read_after_a_machine_crash_gets_the_database_state_before_the_background_reaches_it(
    feed: Feed,
) -> None:
    """With the background rebuild held (fault ``catch-up``), every read of a lost or outdated document
    rebuilds its id first: never a 404 for a version that exists, never an index missing one."""
    package_id = "Crash.PowerLoss"
    body = package(package_id, payload=incompressible(10_000))
    if feed.push(body).status_code != 201:  # pushed by the test above
        assert feed.versions(package_id) == ["1.0.0"]
    flat = "v3/flatcontainer/crash.aged/index.json"
    assert feed.push(package("Crash.Aged", "1.0.0")).status_code == 201
    older = (feed.server.data_dir / "storage" / flat).read_bytes()
    assert feed.push(package("Crash.Aged", "2.0.0")).status_code == 201
    # Never read below: left for the background, whatever the tests before this one pushed.
    assert feed.push(package("Crash.Unread", "1.0.0")).status_code in (201, 409)
    lose_documents_with_the_machine(feed, aged=(flat, older))
    restart(feed.server, fault="catch-up")
    wait_until(
        lambda: "pausing 60 seconds at catch-up" in feed.server.log_tail(30), 30, "the background to wait"
    )
    assert feed.server.get_json(f"/{flat}") == {"versions": ["1.0.0", "2.0.0"]}
    for hive in ("registration", "registration-semver2"):
        index = feed.server.get_json(f"/v3/{hive}/crash.aged/index.json")
        assert [i["catalogEntry"]["version"] for p in index["items"] for i in p["items"]] == [
            "1.0.0",
            "2.0.0",
        ]
    assert_present(feed, package_id, "1.0.0", body)
    done = "every stale document is rebuilt"
    before = feed.server.log_path.read_text().count(done)
    restart(feed.server, fault=None)  # the stop waited for the background; the start lets it run
    wait_until(lambda: feed.server.log_path.read_text().count(done) > before, 30, "the background rebuild")
    assert_clean(feed)
