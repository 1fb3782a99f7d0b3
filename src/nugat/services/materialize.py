"""Writes an id's V3 read documents to storage whenever the id changes (push, unlist, relist).

Restore reads therefore never query the database: they are served from these stored documents, which
nginx or a CDN can serve as well. Runs under a lock on the registration row, so concurrent changes to
one id are written one after the other, each from the latest committed state.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nugat.clock import isoformat, utcnow
from nugat.db import Database
from nugat.db.models import PackageRegistration, PackageVersion
from nugat.protocol import BASE
from nugat.protocol.v3 import flatcontainer, registration, urls
from nugat.services.prefixes import is_verified
from nugat.storage import Storage

JSON_TYPE = "application/json"


def dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _is_leaf(key: str) -> bool:
    return key.startswith("v3/registration") and not key.endswith("/index.json") and "/page/" not in key


class Materializer:
    def __init__(self, db: Database, storage: Storage, public_url: str | None = None) -> None:
        self.db = db
        self.storage = storage
        # With a fixed public URL the documents are stored final, servable by nginx or a CDN as they are.
        self.base = public_url.encode() if public_url else None

    def build(self, id_lower: str) -> None:
        with self.db.session() as s:
            reg = s.scalar(
                select(PackageRegistration).where(PackageRegistration.id_lower == id_lower).with_for_update()
            )
            if reg is None:
                return
            versions = list(s.scalars(select(PackageVersion).where(PackageVersion.registration_id == reg.id)))
            commit = {"commitId": str(uuid.uuid4()), "commitTimeStamp": isoformat(utcnow())}
            wanted: dict[str, bytes] = {}
            if versions:
                wanted[urls.flat_index(id_lower)] = dump(flatcontainer.version_list(versions))
            verified = is_verified(s, reg.id, reg.package_id)
            for hive in urls.HIVES:
                for key, doc in registration.build(
                    hive, reg.package_id, versions, commit, verified=verified
                ).items():
                    wanted[key] = dump(doc)
            # Write leaves and pages before the indexes that point at them (put_many keeps the order).
            changed: list[tuple[str, bytes | Path, str]] = []
            for key in sorted(wanted, key=lambda k: k.endswith("/index.json")):
                data = wanted[key] if self.base is None else wanted[key].replace(BASE.encode(), self.base)
                # A leaf changes only with its own version (pages and indexes carry the commit): reading it
                # back costs far less than the durable write it saves, per version, on every push to the id.
                if _is_leaf(key) and self.storage.get_bytes(key) == data:
                    continue
                changed.append((key, data, JSON_TYPE))
            self.storage.put_many(changed)
            for hive in urls.HIVES:
                for key in self.storage.list_keys(f"v3/{hive}/{id_lower}"):
                    if key not in wanted:
                        self.storage.delete(key)
            if not versions:
                self.storage.delete(urls.flat_index(id_lower))
            reg.built_revision = reg.revision

    def stale(self) -> list[str]:
        """Ids whose documents lag behind their last change (a crash between commit and build)."""
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(PackageRegistration.id_lower).where(
                        PackageRegistration.built_revision < PackageRegistration.revision
                    )
                )
            )

    def rebuild_all(self) -> int:
        with self.db.reading() as s:
            ids = list(s.scalars(select(PackageRegistration.id_lower)))
        for id_lower in ids:
            self.build(id_lower)
        return len(ids)
