"""Who may read: the check in front of the read path, before any routing.

Every feed read (flat container, registration, search, autocomplete, the V2 queries and downloads) passes
here first. The NuGet client sends a source's credentials as HTTP Basic (any user name, the password an API
key with the Read scope), after a 401 asked for them. The key is parsed and its secret checked against the
HMAC ``services.readers`` keeps for at most a second; which ids are private is kept as long. So a read in
the steady state costs a header parse, an HMAC and dictionary lookups, and touches no database.

A refused credential is answered 401 with ``WWW-Authenticate`` (the client asks again, and shows the reason
from ``X-NuGet-Warning`` and the body), and counted against the client's address: past
``readers.FAILED_READ_LIMIT`` new ones a window, the address gets 429 with ``Retry-After`` for the rest of
it, decided from memory (``readers.FailedReads``). A reader who may not see an id gets the same 404 as for
an id never pushed. What the request may read travels to the handlers as ``scope["state"]["read_view"]``,
where search and the V2 queries filter on it. Answers to a reader other than the anonymous public one are
``Cache-Control: private``: a shared cache must not hand them to someone else.

The service index (``/v3/index.json``) and the V2 metadata document stay readable without credentials:
they name URLs and nothing else, and ``nuget push`` reads the index with only an API key. The V2 service
document (``/api/v2/``) is too on a public site, but asks for them on a ``users`` site (as everything on
the credentialed source does): NuGet 2.x takes a source's credentials only from a 401 to that first GET of
the source, and sends its queries with them or with none (a 401 to a query fails the client).

A V2 download (``/api/v2/package/{id}/{version}``) sent with credentials is answered with the .nupkg
itself, as the flat container would (the same decision, headers and 404), rather than a redirect to it:
NuGet 2.x on mono follows a redirect without the credentials, and then fails on the 401.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from nugat import authz, keys
from nugat.authz import Reader
from nugat.feed import layout
from nugat.fileheaders import LOCKED_DOWN
from nugat.httpcommon import warning_header
from nugat.readpath import FEED_PREFIX, HIDDEN, PRIVATE_SOURCE, ASGIApp, ASGIScope, Receive, Send
from nugat.services.readers import Readers, ReadRefused, ReadView, too_many_failures

Message = MutableMapping[str, Any]

_CONTENT = ("/v3/flatcontainer/", "/v3/registration/", "/v3/registration-semver2/")
_QUERIES = ("/v3/search", "/v3/autocomplete")
_V2 = "/api/v2/"
_V2_OPEN = ("/api/v2/", "/api/v2/$metadata")
_V2_SERVICE = ("/api/v2/", "/api/v2")
_V2_DOWNLOAD = "/api/v2/package/"
_CHALLENGE = (b"www-authenticate", b'Basic realm="nugat"')
PRIVATE_CACHE = b"private, no-cache"
UNAVAILABLE_RETRY = 30  # seconds, as a push told the database is down
log = logging.getLogger("nugat.readgate")
READ_ACCESS = "/read-access"  # nginx's auth_request asks here (``ReadGate._read_access``)


class FeedRead(NamedTuple):
    """A feed read, and the package id its path names (None: it names none, or the handler asks about
    each id it answers for)."""

    package_id: str | None


_ANY_READ = FeedRead(None)


def package_of(path: str) -> FeedRead | None:
    """Whether ``path`` is a feed read (None: not one), with the package id it names, if it names one."""
    if path.startswith(_CONTENT):
        parts = path.split("/", 4)
        return FeedRead(parts[3] if len(parts) > 3 and parts[3] else None)  # as the read path reads it
    if path in _QUERIES:
        return _ANY_READ
    if path.startswith(_V2) and path not in _V2_OPEN:
        return _ANY_READ  # the V2 handlers ask ``services.readers`` about each id they answer for
    return None


def _source(path: str) -> tuple[str, bool]:
    """The feed path ``path`` names, and whether through the credentialed source (``/private``)."""
    if path.startswith(PRIVATE_SOURCE + "/"):
        return path[len(PRIVATE_SOURCE) :], True
    return path, False


def _feed_read(path: str, credentialed: bool, public_site: bool = True) -> FeedRead | None:
    """``package_of``; on the credentialed source every path is a read (the service index included), and on
    a ``users`` site the V2 service document too (module docstring)."""
    read = package_of(path)
    if read is None and (credentialed or (not public_site and path in _V2_SERVICE)):
        return _ANY_READ
    return read


def v2_download_in_place(path: str) -> str | None:
    """The flat container's path of the .nupkg a V2 download path names, None when ``path`` is not one."""
    if not path.startswith(_V2_DOWNLOAD):
        return None
    package_id, slash, version = path[len(_V2_DOWNLOAD) :].partition("/")
    if not slash or "/" in version:
        return None
    stored = layout.nupkg_named(package_id, version)
    return "/" + stored if stored is not None else None


def basic_password(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The password of an ``Authorization: Basic`` header; None when there is none (another scheme, or an
    empty password, as mono sends when a source has no credentials: the client is asked for them)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, encoded = value.partition(b" ")
            if scheme.lower() != b"basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return "?"  # unreadable: refused as a malformed key
            return decoded.partition(":")[2] or None
    return None


@dataclass(frozen=True)
class Verdict:
    reader: Reader | None = None
    refused: authz.Decision | None = None
    retry_after: int = 0  # with a refusal: too many failed credentials, or the database down
    hidden: bool = False  # the id is not the reader's to see
    shown_privately: bool = False  # an id of a private organization, shown to one who may read it


UNAVAILABLE = Verdict(
    refused=authz.Decision(False, 503, "The feed is unavailable; retry later"), retry_after=UNAVAILABLE_RETRY
)


class ReadGate:
    """ASGI middleware: lets a feed read through to ``app`` only when its reader may read it."""

    def __init__(
        self,
        app: ASGIApp,
        readers: Readers,
        address: Callable[[ASGIScope], str],
        trusted_peer: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.readers = readers
        self.address = address  # the client's address, as ``httpcommon.client_address`` finds it
        self.trusted_peer = trusted_peer  # is this connection's peer one of the trusted proxies?
        self.public_site = readers.public_site

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == READ_ACCESS:
            await self._read_access(scope, send)
            return
        path, credentialed = _source(path)
        if credentialed:  # the credentialed source: the same feed, where every read asks for credentials
            if not path.startswith(("/v3/", "/api/v2")):
                await _refuse(send, 404, "Not found")
                return
            scope = {**scope, "path": path, "raw_path": path.encode()}
            scope.setdefault("state", {})[FEED_PREFIX] = PRIVATE_SOURCE
        if scope.get("method") in ("GET", "HEAD") and basic_password(scope["headers"]) is not None:
            in_place = v2_download_in_place(path)
            if in_place is not None:  # the .nupkg itself, not a redirect the client follows without them
                path = in_place
                scope = {**scope, "path": path, "raw_path": path.encode()}
        read = _feed_read(path, credentialed, self.public_site)
        if read is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        verdict = await self._decide(scope, read.package_id, credentialed)
        if verdict.refused is not None:
            await _refuse(send, verdict.refused.status, verdict.refused.reason, verdict.retry_after)
            return
        state = scope.setdefault("state", {})
        state["read_view"] = ReadView(verdict.reader, self.public_site)
        if verdict.hidden:
            state[HIDDEN] = True  # the read path answers as for an id never pushed, byte for byte
        if verdict.reader is None and not verdict.shown_privately:
            await self.app(scope, receive, send)
            return

        async def private_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"cache-control"]
                message["headers"] = [*headers, (b"cache-control", PRIVATE_CACHE)]
            await send(message)

        await self.app(scope, receive, private_send)

    async def _decide(self, scope: ASGIScope, package_id: str | None, credentialed: bool) -> Verdict:
        """What a feed read gets: refused (and why), or let in, and whether its id is hidden from it.
        503 when the facts it needs cannot be read (``services.readers`` keeps the last ones a while)."""
        try:
            return await self._judge(scope, package_id, credentialed)
        except SQLAlchemyError as exc:
            log.error("read refused, the database is unavailable: %s", type(exc).__name__)
            return UNAVAILABLE

    async def _judge(self, scope: ASGIScope, package_id: str | None, credentialed: bool) -> Verdict:
        password = basic_password(scope["headers"])
        reader: Reader | None = None
        if password is not None:
            if self.readers.throttled():  # only while some address is refused: no work on the steady path
                address = self.address(scope)
                throttled = self._throttled(address, self.readers.blocked_for(address))
                if throttled is not None:
                    return throttled
            try:
                reader = await self._reader(password)
            except ReadRefused as exc:
                address = self.address(scope)
                wait = await run_in_threadpool(self.readers.failed, address, password)
                return self._throttled(address, wait) or Verdict(
                    refused=authz.Decision(False, exc.status, exc.message)
                )
        decision = authz.can_read_feed(reader, public_site=self.public_site and not credentialed)
        if not decision.allowed:
            return Verdict(refused=decision)
        if package_id is None:
            return Verdict(reader)
        owners = await self._private_owners(package_id)
        decision = authz.can_read(reader, package_id, public_site=self.public_site, private_owners=owners)
        return Verdict(reader, hidden=not decision.allowed, shown_privately=decision.allowed and bool(owners))

    @staticmethod
    def _throttled(address: str, wait: int) -> Verdict | None:
        if not wait:
            return None
        return Verdict(refused=authz.Decision(False, 429, too_many_failures(address)), retry_after=wait)

    async def _read_access(self, scope: ASGIScope, send: Send) -> None:
        """nginx's ``auth_request`` (docs/nginx/nugat-private.conf): may the request's credentials read
        ``X-Original-URI``? 204 yes (nginx serves the file), 401 a refused or missing credential, 403 an id
        not the reader's to see; on either refusal nginx passes the request itself to nugat, which answers
        as it would alone (a 401 with its reason, a 429 for an address sending too many refused credentials,
        or the 404 of an id never pushed). The client's address is nginx's ``X-Forwarded-For``, believed
        from a trusted proxy only, as for every request.

        Only a trusted proxy may ask (others get the 404 of an unknown path): its answers tell a private
        id (403) from one never pushed (204, and nginx finds no file), which the feed never tells."""
        peer = scope.get("client")
        if peer is None or not self.trusted_peer(peer[0]):
            await _refuse(send, 404, "Not found")
            return
        original = ""
        for name, value in scope["headers"]:
            if name == b"x-original-uri":
                original = _as_nginx_serves(value.decode("latin-1").split("?", 1)[0])
        path, credentialed = _source(original)
        read = _feed_read(path, credentialed, self.public_site)
        if read is None:
            await _refuse(send, 403, "Not a feed read")
            return
        verdict = await self._decide(scope, read.package_id, credentialed)
        status = 204
        if verdict.refused is not None:  # auth_request knows no 429: nugat answers it to the request itself
            status = 401 if verdict.refused.status in (401, 429) else 403
        elif verdict.hidden:
            status = 403
        # nginx caches this by URL and by a hash of the Authorization header (never the header itself)
        headers = [(b"cache-control", b"no-store"), (b"vary", b"Authorization")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _reader(self, password: str) -> Reader:
        known = self.readers.known_reader(password)
        if known is not None:
            return known
        parsed = keys.parse_key(password.strip())
        facts = None
        if parsed is not None:
            facts = self.readers.cached_key(parsed.key_id)
            if facts is None:
                facts = await run_in_threadpool(self.readers.load_key, parsed.key_id)
        return self.readers.key_reader(parsed, facts, password)

    async def _private_owners(self, package_id: str) -> frozenset[int]:
        known = self.readers.private_ids()
        if known is None:
            known = await run_in_threadpool(self.readers.load_private_ids)
        return known.get(package_id.lower(), frozenset())


def _as_nginx_serves(raw: str) -> str:
    """The path nginx will serve for a request written ``raw``, or "" when that is not plainly ``raw``.

    nginx decodes ``%XX``, merges slashes and resolves ``.``/``..`` before it picks the file, while
    ``$request_uri`` keeps what the client wrote: ``guard.lib/../other.lib`` must not be judged as
    guard.lib. A path nginx would rewrite is not decided here ("" is refused, and nginx then hands the
    request to nugat, whose read path refuses such paths itself).
    """
    if "%" in raw or "\\" in raw or any(part in ("", ".", "..") for part in raw.split("/")[1:]):
        return ""
    return raw


async def _refuse(send: Send, status: int, reason: str, retry_after: int = 0) -> None:
    body = reason.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        *LOCKED_DOWN,
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
        (b"x-nuget-warning", warning_header(reason).encode()),
    ]
    if status == 401:
        headers.append(_CHALLENGE)
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
