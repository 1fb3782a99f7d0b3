"""Faults under a running server: the storage full or read-only, the upload folder full, the database gone.

A push then gets a precise 503 or 507 and nothing is half-written; reads keep working where the data
allows (stored documents and packages need no database). The storage and temp folders are small tmpfs
mounts in a mount namespace of the server's own (``unshare``), so nothing outside the test is touched;
the test looks at them through ``/proc/<pid>/root``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from hostile.harness import DATABASES, Feed, assert_refusal, raw_exchange, started, wait_until
from support.s3 import CREDENTIALS, moto_server
from support.server import POSTGRES_ADMIN_DSN, NugatServer, user_key
from support.zips import MIB, incompressible, package

STORAGE_SIZE = 2 * MIB
TMP_SIZE = 1 * MIB


def in_namespace(server: NugatServer, *argv: str) -> None:
    """Run a command in the server's mount namespace."""
    assert server.process is not None
    user = [] if os.geteuid() == 0 else ["--user", "--preserve-credentials"]
    subprocess.run(["nsenter", "--target", str(server.process.pid), *user, "--mount", *argv], check=True)


def seen_by(server: NugatServer, path: Path) -> Path:
    """``path`` as the server sees it (inside its mount namespace)."""
    assert server.process is not None
    return Path(f"/proc/{server.process.pid}/root") / path.relative_to("/")


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


class TightFeed(Feed):
    """A feed whose storage and temp folders are small tmpfs mounts only the server sees."""

    @property
    def storage(self) -> Path:
        return seen_by(self.server, self.server.data_dir / "storage")

    @property
    def tmp(self) -> Path:
        return seen_by(self.server, self.server.data_dir / "tmp")

    def assert_nothing_of(self, package_id: str) -> None:
        id_lower = package_id.lower()
        assert self.versions(package_id) == []
        assert files_under(self.storage / "v3/flatcontainer" / id_lower) == []
        assert list(self.storage.rglob(".tmp-*")) == [], "a partial blob was left behind"
        assert list(self.tmp.glob("upload-*")) == [], "a temp upload was left behind"
        assert self.rows("SELECT count(*) FROM pending_uploads") == [(0,)]

    def assert_readable(self, package_id: str) -> None:
        id_lower = package_id.lower()
        assert self.server.get_json(f"/v3/flatcontainer/{id_lower}/index.json") == {"versions": ["1.0.0"]}
        assert (
            self.server.get(f"/v3/flatcontainer/{id_lower}/1.0.0/{id_lower}.1.0.0.nupkg").status_code == 200
        )
        hits = self.server.get_json(f"/v3/search?q=packageid:{id_lower}")["data"]
        assert [h["id"] for h in hits] == [package_id]


@pytest.fixture(scope="module", params=DATABASES)
def tight(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TightFeed]:
    with started(tmp_path_factory, "tight", request.param, {}) as server:
        feed = TightFeed(server, user_key(server, "alice", ["push"]))
        server.stop()
        mounts = {server.data_dir / "storage": STORAGE_SIZE, server.data_dir / "tmp": TMP_SIZE}
        for path in mounts:
            path.mkdir(exist_ok=True)
        script = " && ".join(
            f"mount -t tmpfs -o size={size} nugat-test {shlex.quote(str(path))}"
            for path, size in mounts.items()
        )
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            unshare.insert(1, "--map-root-user")
        server.wrapper = (*unshare, "sh", "-c", f'{script} && exec "$@"', "sh")
        server.start()
        assert not (feed.storage / "v3").exists()  # the server's storage is the fresh tmpfs
        yield feed
        feed.close()


def test_storage_read_only_during_a_push(tight: TightFeed) -> None:
    assert tight.push(package("Ro.Before")).status_code == 201
    in_namespace(tight.server, "mount", "-o", "remount,ro", str(tight.server.data_dir / "storage"))
    try:
        resp = tight.push(package("Ro.During"))
        assert_refusal(resp, 503, r"^The package storage is unavailable; nothing was stored, retry later$")
        tight.assert_nothing_of("Ro.During")
        tight.assert_readable("Ro.Before")
        health = tight.server.get("/health")
        assert health.status_code == 503 and health.json()["storage"]
    finally:
        in_namespace(tight.server, "mount", "-o", "remount,rw", str(tight.server.data_dir / "storage"))
    assert tight.push(package("Ro.During")).status_code == 201
    tight.assert_readable("Ro.During")


def test_storage_full_during_a_push(tight: TightFeed) -> None:
    assert tight.push(package("Full.Before")).status_code == 201
    filler = tight.storage / "filler"
    stat = os.statvfs(tight.storage)
    filler.write_bytes(bytes(stat.f_bavail * stat.f_frsize - 150 * 1024))  # leaves 150 KiB
    try:
        resp = tight.push(package("Full.During", payload=incompressible(300 * 1024)))
        assert_refusal(resp, 507, r"^The package storage is full; nothing was stored$")
        tight.assert_nothing_of("Full.During")
        tight.assert_readable("Full.Before")
    finally:
        filler.unlink()
    assert tight.push(package("Full.During", payload=incompressible(300 * 1024))).status_code == 201
    tight.assert_readable("Full.During")


def test_upload_folder_full(tight: TightFeed) -> None:
    body = package("Tmp.Full", payload=incompressible(TMP_SIZE + 200 * 1024))
    host = tight.server.url.removeprefix("http://")
    head = (
        f"PUT /api/v2/package HTTP/1.1\r\nHost: {host}\r\nX-NuGet-ApiKey: {tight.key}\r\n"
        f"Connection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()

    def send_body(sock: object) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)  # type: ignore[attr-defined]

    resp = raw_exchange(tight.server.url, head, then=send_body)
    assert resp.status == 507, resp
    assert resp.body == b"The server's disk is full: the upload was not kept; retry later"
    tight.assert_nothing_of("Tmp.Full")


# The database going away: PostgreSQL only (an embedded SQLite file does not go away while its disk stays).


def database_name(server: NugatServer) -> str:
    assert server.database_url is not None
    return server.database_url.rsplit("/", 1)[1]


@contextlib.contextmanager
def database_down(server: NugatServer) -> Iterator[None]:
    """No new connection to the server's database, and its open ones cut."""
    name = database_name(server)
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
    try:
        yield
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


@pytest.fixture(scope="module")
def pg_feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    with started(tmp_path_factory, "dbdown", "postgres", {}) as server:
        feed = Feed(server, user_key(server, "alice", ["push"]))
        yield feed
        feed.close()


def test_database_down(pg_feed: Feed) -> None:
    assert pg_feed.push(package("Db.Before")).status_code == 201
    files = pg_feed.snapshot().files
    with database_down(pg_feed.server):
        resp = pg_feed.push(package("Db.During"))
        assert_refusal(resp, 503, r"^The database is unavailable; retry later$")
        assert resp.headers["retry-after"] == "30"
        # Restore reads stored documents and packages only: it keeps working.
        assert pg_feed.server.get_json("/v3/flatcontainer/db.before/index.json") == {"versions": ["1.0.0"]}
        assert (
            pg_feed.server.get("/v3/flatcontainer/db.before/1.0.0/db.before.1.0.0.nupkg").status_code == 200
        )
        assert pg_feed.server.get("/v3/registration/db.before/index.json").status_code == 200
        # What needs the database says so.
        assert pg_feed.server.get("/v3/search?q=db").status_code == 503
        health = pg_feed.server.get("/health")
        assert health.status_code == 503 and health.json()["database"]
        assert files_under(pg_feed.server.data_dir / "storage/v3/flatcontainer/db.during") == []
        assert pg_feed.temp_files() == []
    assert pg_feed.snapshot().files == files
    assert pg_feed.versions("Db.During") == []
    assert pg_feed.push(package("Db.During")).status_code == 201


def test_private_reads_while_the_database_is_down(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A private site keeps restoring for the keys it read before the database went away (nothing can be
    revoked meanwhile: that is a write to the same database); a key it never read gets 503, not a 500."""
    with started(tmp_path_factory, "dbdown-private", "postgres", {"NUGAT_READ_ACCESS": "users"}) as server:
        feed = Feed(server, user_key(server, "alice", ["push"]))
        assert feed.push(package("Db.Private")).status_code == 201
        known, unseen = (user_key(server, "alice", ["read"]) for _ in range(2))
        flat = "/v3/flatcontainer/db.private/index.json"
        assert server.get(flat, auth=("any", known)).status_code == 200
        with database_down(server):
            assert server.get(flat, auth=("any", known)).json() == {"versions": ["1.0.0"]}
            assert server.get(flat).status_code == 401  # no credentials: no database needed to say so
            refused = server.get(flat, auth=("any", unseen))
            assert_refusal(refused, 503, r"^The feed is unavailable; retry later$")
            assert refused.headers["retry-after"] == "30"
        assert server.get(flat, auth=("any", unseen)).status_code == 200
        feed.close()


def test_database_lost_in_the_middle_of_a_push(pg_feed: Feed) -> None:
    server = pg_feed.server
    server.stop()
    server.env["NUGAT_FAULT"] = "after-blob-write:3"
    server.start()
    try:
        before = pg_feed.snapshot()
        answer: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: answer.append(pg_feed.push(package("Db.Lost"))))
        thread.start()
        wait_until(lambda: "pausing 3 seconds at after-blob-write" in server.log_tail(20), 30, "the pause")
        with database_down(server):
            thread.join(timeout=30)
            assert_refusal(answer[0], 503, r"^The database is unavailable; nothing was stored, retry later$")
            # The blobs written before the commit failed are gone already.
            assert files_under(server.data_dir / "storage/v3/flatcontainer/db.lost") == []
            assert pg_feed.temp_files() == []
        # The failed push could not clear its notes without the database...
        assert pg_feed.rows("SELECT count(*) FROM pending_uploads") != [(0,)]
    finally:
        server.stop()
        del server.env["NUGAT_FAULT"]
        server.start()
    pg_feed.assert_nothing_stored(before)  # ...the restart's recovery did
    assert pg_feed.push(package("Db.Lost")).status_code == 201


def test_s3_storage_gone(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The production setup (PostgreSQL, packages in S3) when S3 goes away: a moto of its own, stopped."""
    with contextlib.ExitStack() as s3_running:
        s3 = s3_running.enter_context(moto_server(tmp_path_factory.mktemp("moto-outage")))
        env = {**CREDENTIALS, "NUGAT_STORAGE_URL": s3.storage_url(s3.new_bucket())}
        with started(tmp_path_factory, "s3gone", "postgres", env) as server:
            feed = Feed(server, user_key(server, "alice", ["push"]))
            try:
                assert feed.push(package("S3.Before")).status_code == 201
                s3_running.close()  # S3 is gone; the server stays
                resp = feed.push(package("S3.During"))
                assert_refusal(
                    resp, 503, r"^The package storage is unavailable; nothing was stored, retry later$"
                )
                assert feed.versions("S3.During") == []
                assert feed.temp_files() == []
                # What needs only the database goes on; what needs the storage says so, not 500.
                hits = server.get_json("/v3/search?q=packageid:s3.before")["data"]
                assert [h["id"] for h in hits] == ["S3.Before"]
                wait_until(
                    lambda: server.get("/v3/flatcontainer/s3.before/index.json").status_code == 503,
                    10,
                    "the read path to notice",
                )
                assert server.get("/health").status_code == 503
            finally:
                feed.close()
