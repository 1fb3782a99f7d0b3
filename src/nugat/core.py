"""Builds the services once from settings; the CLI and the web app share this.

Each service's module is imported when the service is first built: a ``nugat`` command builds one or two of
them, and importing all of them (JWT and cryptography, the mail templates, metrics, search) took about a
third of its start.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cached_property
from typing import TYPE_CHECKING

from nugat import services
from nugat.db import Database
from nugat.settings import Settings
from nugat.storage import Storage, open_storage

if TYPE_CHECKING:
    from nugat.proxies import TrustedProxies
    from nugat.services.account_mail import AccountMail
    from nugat.services.accounts import Accounts
    from nugat.services.audit import AuditLog
    from nugat.services.catchup import Catchup
    from nugat.services.downloads import DownloadCounter
    from nugat.services.keynotices import KeyNotices
    from nugat.services.leaks import Leaks
    from nugat.services.mail import Outbox
    from nugat.services.materialize import Materializer
    from nugat.services.orgs import Orgs
    from nugat.services.owners import Owners
    from nugat.services.packages import Packages
    from nugat.services.readers import Readers
    from nugat.services.reservations import Prefixes
    from nugat.services.search import Search
    from nugat.services.trusted import TrustedPublishing
    from nugat.services.twofactor import TwoFactor


def import_all() -> None:
    """Import every service's module, and PyJWT, now: the server does at start, so that no request waits
    for an import (``Core`` imports a service's module when the service is first used)."""
    for module in pkgutil.iter_modules(services.__path__, f"{services.__name__}."):
        importlib.import_module(module.name)
    importlib.import_module("jwt")


class Core:
    def __init__(self, settings: Settings, *, storage: Storage | None = None) -> None:
        """``storage``: a backend to use instead of the one ``settings`` name (the unit tests pass an
        in-memory one, ``tests/support/memory.py``)."""
        self.settings = settings
        if settings.database_url is None:  # the embedded SQLite file; storage and secret make their own
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.db_url)
        if storage is not None:
            self.storage = storage

    @cached_property
    def proxies(self) -> TrustedProxies:
        from nugat.proxies import TrustedProxies

        return TrustedProxies(self.settings.trusted_proxies)

    @cached_property
    def storage(self) -> Storage:
        return open_storage(
            self.settings.storage_url or f"file://{(self.settings.data_dir / 'storage').resolve()}"
        )

    @cached_property
    def accounts(self) -> Accounts:
        from nugat.services.accounts import Accounts

        return Accounts(
            self.db, self.settings.server_secret(), self.outbox, require_2fa=self.settings.require_2fa
        )

    @cached_property
    def outbox(self) -> Outbox:
        from nugat.services.mail import Outbox

        return Outbox(self.db, self.settings)

    @cached_property
    def leaks(self) -> Leaks:
        from nugat.services.leaks import Leaks

        return Leaks(self.accounts)

    @cached_property
    def key_notices(self) -> KeyNotices:
        from nugat.services.keynotices import KeyNotices

        return KeyNotices(self.db, self.outbox, self.settings.mail_poll_seconds * 12)

    @cached_property
    def account_mail(self) -> AccountMail:
        from nugat.services.account_mail import AccountMail

        return AccountMail(self.db, self.accounts, self.outbox)

    @cached_property
    def twofactor(self) -> TwoFactor:
        from nugat.services.twofactor import TwoFactor

        return TwoFactor(self.db, self.settings.server_secret(), self.outbox)

    @cached_property
    def materializer(self) -> Materializer:
        from nugat.services.materialize import Materializer

        return Materializer(self.db, self.storage, self.settings.documents_url)

    @cached_property
    def catchup(self) -> Catchup:
        from nugat.services.catchup import Catchup

        return Catchup(self.materializer)

    @cached_property
    def packages(self) -> Packages:
        from nugat.services.packages import Packages

        return Packages(
            self.db,
            self.storage,
            self.materializer,
            self.settings.push_limit_per_hour,
            on_new_id=lambda: self.readers.forget_private_ids(),
            screen=lambda path, grant, address: self.leaks.check_package(
                path,
                f"a package pushed with key {grant.key_id} from {address}",
                actor_id=grant.user_id,
                address=address,
            ),
        )

    @cached_property
    def orgs(self) -> Orgs:
        from nugat.services.orgs import Orgs

        return Orgs(self.db, self.outbox, on_private_change=lambda: self.readers.forget_private_ids())

    @cached_property
    def owners(self) -> Owners:
        from nugat.services.owners import Owners

        return Owners(self.db, self.materializer, self.outbox)

    @cached_property
    def prefixes(self) -> Prefixes:
        from nugat.services.reservations import Prefixes

        return Prefixes(self.db, self.materializer)

    @cached_property
    def audit(self) -> AuditLog:
        from nugat.services.audit import AuditLog

        return AuditLog(self.db)

    @cached_property
    def readers(self) -> Readers:
        from nugat.services.readers import Readers

        return Readers(self.db, self.settings.server_secret(), public_site=self.settings.public_reads)

    @cached_property
    def search(self) -> Search:
        from nugat.services.search import Search

        return Search(self.db)

    @cached_property
    def downloads(self) -> DownloadCounter:
        from nugat.services.downloads import DownloadCounter

        return DownloadCounter(self.db)

    @cached_property
    def trusted(self) -> TrustedPublishing:
        """Trusted publishing; enabled when issuers are configured and an audience is known (the
        configured one, else the public URL: never the request's host, which the client chooses)."""
        from nugat import oidc
        from nugat.services.trusted import TrustedPublishing

        settings = self.settings
        issuers = oidc.parse_issuers(settings.oidc_issuers)
        audience = settings.oidc_audience
        if settings.oidc_config is not None:
            more, file_audience = oidc.load_config(settings.oidc_config)
            issuers = oidc.merge(issuers, more)
            audience = audience or file_audience
        return TrustedPublishing(
            self.db,
            settings.server_secret(),
            issuers,
            audience or settings.public_url,
            require_2fa=settings.require_2fa,
            outbox=self.outbox,
        )

    def close(self) -> None:
        if "search" in self.__dict__:  # made (``cached_property``): its counts end before the pool does
            self.search.close()
        self.db.dispose()
