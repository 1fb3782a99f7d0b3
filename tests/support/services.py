"""A nugat without a server, for the unit tests of ``nugat.services``: a ``Core`` on a fresh SQLite database
with the in-memory storage (``support.memory``), a clock the test moves, and short ways to make users, keys
and pushes and to read back what a service left in the database and the storage.

The tests speak through the services' public methods; the few reads below that go to the tables directly
(pending-upload notes, version rows) check what no public method shows: that a failed push left nothing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nugat.core import Core
from nugat.db import Database
from nugat.db.models import Account, OutboxMail, PackageRegistration, PackageVersion, PendingUpload
from nugat.feed import layout
from nugat.keys import KeyGrant
from nugat.mail.smtp import MailRefused
from nugat.services import ServiceError
from nugat.services.audit import EventView
from nugat.services.packages import PushResult
from nugat.settings import Settings
from support.memory import MemoryStorage
from support.zips import package

SECRET = "unit-test-secret"
ADDRESS = "192.0.2.1"  # TEST-NET-1: the address every helper acts from
START = datetime(2026, 3, 1, 12, 0, 0)
# A site that mails: mail is queued in the outbox; nothing is sent unless a test sends it (port 9 discards).
MAILING = {
    "smtp_url": "smtp://127.0.0.1:9",
    "mail_from": "nugat@example.test",
    "public_url": "https://nuget.example.test",
}


class Clock:
    """Stands for ``nugat.clock.utcnow`` in every nugat module: time moves only when the test says so."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def migrated_template(folder: Path) -> Path:
    """A database migrated to head once; each test starts from a copy (a migration run costs 0.3 s)."""
    path = folder / "nugat.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


def copy_database(template: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, data_dir / source.name)


@contextlib.contextmanager
def refused(status: int, reason: str) -> Iterator[pytest.ExceptionInfo[ServiceError]]:
    """An operation refused with HTTP ``status`` and a message matching ``reason`` (a regex)."""
    with pytest.raises(ServiceError, match=reason) as info:
        yield info
    assert info.value.status == status, f"{info.value.status} {info.value.message}"


def at_once(calls: int, call: Callable[[int], Any]) -> list[int]:
    """Run ``call(n)`` for n in range(``calls``) on as many threads, released together; the HTTP status of
    each (200 when it returns, a ServiceError's status when it raises), sorted."""
    barrier = threading.Barrier(calls, timeout=60)

    def one(n: int) -> int:
        barrier.wait()
        try:
            call(n)
        except ServiceError as exc:
            return exc.status
        return 200

    with ThreadPoolExecutor(calls) as pool:
        return sorted(pool.map(one, range(calls)))


def without_commit(doc: Any) -> Any:
    """A document with its commit id and time left out (every build writes new ones)."""
    if isinstance(doc, dict):
        return {k: without_commit(v) for k, v in doc.items() if k not in ("commitId", "commitTimeStamp")}
    if isinstance(doc, list):
        return [without_commit(v) for v in doc]
    return doc


class MailSink:
    """A transport for ``Outbox.send_due`` that keeps what it is given: ``refuse`` makes it refuse mail to
    those addresses for good (an SMTP 5xx); ``break_after`` drops the connection after that many sends."""

    def __init__(self, refuse: tuple[str, ...] = (), break_after: int | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.refuse = refuse
        self.break_after = break_after
        self.connections = 0

    def __call__(self) -> MailSink:
        self.connections += 1
        return self

    def __enter__(self) -> MailSink:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: EmailMessage) -> None:
        if self.break_after is not None and len(self.sent) >= self.break_after:
            raise ConnectionResetError("the server broke off")
        if message["To"] in self.refuse:
            raise MailRefused(f"recipient refused: {message['To']}")
        self.sent.append(message)


class Site:
    """One nugat: its ``core`` (the composition root, as the CLI and the web app build it), ``storage``."""

    def __init__(
        self, data_dir: Path, storage: MemoryStorage, family: list[Site] | None = None, **settings: Any
    ) -> None:
        self.family = [] if family is None else family  # this site and its restarts, closed at the end
        self.family.append(self)
        self.data_dir = data_dir
        self.storage = storage
        self.settings = settings
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": None,
            "storage_url": None,
            "secret_key": SECRET,
            "public_url": None,
            "push_limit_per_hour": None,
        }
        self.core = Core(Settings(**(values | settings)), storage=storage)
        self._uploads = 0
        self._keys = 0

    def restart(self) -> Site:
        """Another process on the same database and storage (what a server sees after a restart)."""
        self.core.close()
        return Site(self.data_dir, self.storage, self.family, **self.settings)

    def close(self) -> None:
        for site in self.family:
            site.core.close()

    # Accounts and keys ---------------------------------------------------------------------------------

    def user(self, name: str, *, admin: bool = False) -> Account:
        return self.core.accounts.create_user(name, f"{name}@example.test", None, admin=admin)

    def users(self, *names: str) -> None:
        for name in names:
            self.user(name)

    def secret(
        self,
        user: str,
        *scopes: str,
        globs: tuple[str, ...] = ("*",),
        packages: tuple[str, ...] = (),
        owner: str | None = None,
        days: int | None = None,
    ) -> str:
        """The secret of a new key of ``user`` (scopes default to push and unlist)."""
        self._keys += 1  # a user's key names are unique
        name = f"test key {self._keys}"
        _, secret = self.core.accounts.create_key(
            user, name, list(scopes or ("push", "unlist")), list(globs), list(packages), days, owner
        )
        return secret

    def key(
        self,
        user: str,
        *scopes: str,
        globs: tuple[str, ...] = ("*",),
        packages: tuple[str, ...] = (),
        owner: str | None = None,
    ) -> KeyGrant:
        """What a new key of ``user`` grants, verified as a push or unlist verifies it."""
        secret = self.secret(user, *scopes, globs=globs, packages=packages, owner=owner)
        grant, _ = self.core.accounts.verify_key(secret, ADDRESS)
        return grant

    # Packages ------------------------------------------------------------------------------------------

    def upload(self, package_id: str, version: str = "1.0.0", **fields: Any) -> Path:
        """A fresh upload file (a push may move it into the storage) of a package made by ``zips.package``."""
        self._uploads += 1
        path = self.data_dir / "uploads" / f"{self._uploads}.nupkg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package(package_id, version, **fields))
        return path

    def push(self, grant: KeyGrant, package_id: str, version: str = "1.0.0", **fields: Any) -> PushResult:
        return self.core.packages.push(self.upload(package_id, version, **fields), grant, ADDRESS)

    def unlist(self, grant: KeyGrant, package_id: str, version: str = "1.0.0") -> None:
        self.core.packages.set_listed(package_id, version, False, grant, ADDRESS)

    def relist(self, grant: KeyGrant, package_id: str, version: str = "1.0.0") -> None:
        self.core.packages.set_listed(package_id, version, True, grant, ADDRESS)

    # Reading back ----------------------------------------------------------------------------------------

    def document(self, key: str) -> Any:
        data = self.storage.peek(key)
        return None if data is None else json.loads(data)

    def documents(self, package_id: str) -> dict[str, Any]:
        """Every stored document of an id (flat index, registration indexes, pages), without commit data."""
        id_lower = package_id.lower()
        keys = [k for hive in layout.HIVES for k in self.storage.keys(f"v3/{hive}/{id_lower}")]
        if layout.flat_index(id_lower) in self.storage.blobs:
            keys.append(layout.flat_index(id_lower))
        return {key: without_commit(self.document(key)) for key in sorted(keys)}

    def flat_versions(self, package_id: str) -> list[str] | None:
        """The versions in the id's flat container index (None: no index)."""
        doc = self.document(layout.flat_index(package_id.lower()))
        return None if doc is None else list(doc["versions"])

    def catalog(self, package_id: str, hive: str = "registration-semver2") -> dict[str, dict[str, Any]]:
        """Version -> catalog entry, from the id's registration index (pages inlined, or stored apart)."""
        index = self.document(layout.registration_index(hive, package_id.lower()))
        if index is None:
            return {}
        entries = {}
        for page in index["items"]:
            items = page.get("items")
            if items is None:  # a page stored apart
                key = page["@id"].split("/", 1)[1]
                items = self.document(key)["items"]
            for leaf in items:
                entries[leaf["catalogEntry"]["version"]] = leaf["catalogEntry"]
        return entries

    def blobs(self, package_id: str) -> list[str]:
        """The stored files of an id's versions (everything in its flat container but the index)."""
        id_lower = package_id.lower()
        return [k for k in self.storage.keys(f"{layout.FLAT}/{id_lower}") if k != layout.flat_index(id_lower)]

    def versions(self, package_id: str) -> dict[str, bool]:
        """Version -> listed, as committed in the database."""
        with self.core.db.reading() as s:
            rows = s.execute(
                select(PackageVersion.version, PackageVersion.listed)
                .join(PackageRegistration)
                .where(PackageRegistration.id_lower == package_id.lower())
            )
            return {version: listed for version, listed in rows}

    def notes(self) -> list[str]:
        """The pending-upload notes left (a push noted, neither committed nor undone)."""
        with self.core.db.reading() as s:
            return list(s.scalars(select(PendingUpload.key)))

    def mails(self, to: str | None = None) -> list[OutboxMail]:
        """The mails in the outbox, oldest first (to one address, if given): what ``Outbox.status`` lists."""
        found = reversed(self.core.outbox.status(recent=10_000).recent)
        return [m for m in found if to is None or m.recipient == to]

    def events(self, action: str | None = None) -> list[EventView]:
        """Audit events, oldest first (of one action, if given)."""
        found = reversed(self.core.audit.events(limit=10_000))
        return [e for e in found if action is None or e.action == action]
