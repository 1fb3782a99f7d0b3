"""The restore hot path: stored V3 documents and packages served from memory, without a framework.

Every flat-container and registration request lands here before any routing. The stored blob is
checked with one cheap ``cached_info`` (a ``stat`` on the filesystem backend, a short-lived cached HEAD
on S3), so a change written by any process is seen on the next request; the body, its gzip form, its
ETag and its response headers are computed once per change and per base URL, and kept in a bounded LRU.
Every answer carries the headers that keep a package file from acting as a page (``fileheaders``).
Packages too large to keep in memory are sent from the file (zero-copy where the server supports the
ASGI ``pathsend`` extension), redirected to the storage when it offers URLs, or streamed from it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse

from nugat.feed import BASE
from nugat.feed.layout import document_id
from nugat.fileheaders import LOCKED_DOWN, file_headers
from nugat.storage import BlobInfo, Storage, StorageError

if TYPE_CHECKING:
    from nugat.services.catchup import Catchup

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

log = logging.getLogger("nugat")

HIDDEN = "read_hidden"  # set in ``scope["state"]`` by ``readgate`` for an id the reader may not see
# The credentialed source (``readgate``): the feed again below this path, where every read asks for
# credentials, so that the NuGet client sends a source's password on a public site too (it sends one only
# when a 401 asks). ``scope["state"][FEED_PREFIX]`` holds it for the URLs its documents carry.
PRIVATE_SOURCE = "/private"
FEED_PREFIX = "feed_prefix"
PREFIXES = ("/v3/flatcontainer/", "/v3/registration/", "/v3/registration-semver2/")
_LEAF = re.compile(r"v3/registration(?:-semver2)?/[^/]+/(?!index\.json$)[^/]+\.json")
MAX_CACHED_BLOB = 1 << 20
JSON_CACHE = b"public, max-age=60"
IMMUTABLE_CACHE = b"public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Entry:
    token: str
    body: bytes
    gzipped: bytes | None
    etag: bytes
    last_modified: bytes
    headers: Headers  # of a 200 with the plain body
    gzip_headers: Headers | None  # of a 200 with the gzipped body
    validators: Headers  # of a 304


class DocumentCache:
    """A byte-bounded LRU of rendered bodies keyed by (storage key, base URL)."""

    def __init__(self, max_bytes: int = 128 << 20) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.items: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str], token: str) -> Entry | None:
        with self.lock:
            entry = self.items.get(key)
            if entry is None or entry.token != token:
                return None
            self.items.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str], entry: Entry) -> None:
        cost = len(entry.body) + len(entry.gzipped or b"")
        if cost > self.max_bytes // 4:
            return
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.size -= len(old.body) + len(old.gzipped or b"")
            self.items[key] = entry
            self.size += cost
            while self.size > self.max_bytes:
                _, evicted = self.items.popitem(last=False)
                self.size -= len(evicted.body) + len(evicted.gzipped or b"")


def render(
    key: str, info: BlobInfo, raw: bytes, base: str, vary: bytes = b"", fixed_base: str | None = None
) -> Entry:
    """The cached answer for a stored blob. ``vary``: the request headers its body depends on besides
    Accept-Encoding (``Host`` when the URLs in documents follow the request), for shared caches.
    ``fixed_base``: the URL documents were stored with (``Settings.documents_url``), else they hold
    ``BASE``; a request under another base (the credentialed source's ``/private``) gets its feed URLs
    (those under ``/v3/``) moved under its own, so a client there stays on the source it was given."""
    is_json = key.endswith(".json")
    body = raw.replace(BASE.encode(), base.encode()) if is_json else raw
    if is_json and fixed_base is not None and base != fixed_base:
        body = body.replace(f"{fixed_base}/v3/".encode(), f"{base}/v3/".encode())
    gzipped = gzip.compress(body, compresslevel=6, mtime=0) if is_json and len(body) > 512 else None
    etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
    last_modified = formatdate(info.modified, usegmt=True).encode()
    vary_on = ([b"accept-encoding"] if gzipped is not None else []) + ([vary] if is_json and vary else [])
    validators = [
        (b"etag", etag),
        (b"last-modified", last_modified),
        (b"cache-control", JSON_CACHE if is_json else IMMUTABLE_CACHE),
        *([(b"vary", b", ".join(vary_on))] if vary_on else []),
    ]
    common = [*file_headers(key, body[:16]), *validators]
    if gzipped is None:
        return Entry(info.token, body, None, etag, last_modified, [*common, _length(body)], None, validators)
    return Entry(
        info.token,
        body,
        gzipped,
        etag,
        last_modified,
        [*common, _length(body)],
        [*common, (b"content-encoding", b"gzip"), _length(gzipped)],
        validators,
    )


def _length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


class ReadPath:
    """ASGI middleware: answers GET/HEAD of stored V3 documents, passes everything else to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        storage: Storage,
        base_url: Callable[[ASGIScope], str],
        on_download: Callable[[str, str], None],
        cache: DocumentCache | None = None,
        vary: bytes = b"",
        catchup: Catchup | None = None,
        fixed_base: str | None = None,
    ) -> None:
        """``vary``: what the documents' URLs depend on in the request (``base_url`` reads it), for the
        ``Vary`` header of documents (empty when they have a fixed base URL). ``catchup``: while it is
        active (documents may be stale after a crash), an id's documents are checked before serving.
        ``fixed_base``: see ``render``."""
        self.app = app
        self.storage = storage
        self.base_url = base_url
        self.on_download = on_download
        self.cache = cache or DocumentCache()
        self.vary = vary
        self.catchup = catchup
        self.fixed_base = fixed_base

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method not allowed", extra=[(b"allow", b"GET, HEAD")])
            return
        key = path[1:].lower()
        if ".." in key or "//" in key or "\\" in key or "%" in key:
            await _respond(send, 404, b"Not found")
            return
        if self.catchup is not None and self.catchup.active:
            id_lower = document_id(key)
            if id_lower is not None:
                try:
                    await run_in_threadpool(self.catchup.ensure, id_lower)
                except Exception as exc:  # the database or storage is down: no document is known fresh
                    log.error("could not check the documents of %s: %s", id_lower, exc)
                    await _respond(send, 503, b"The feed is unavailable; retry later")
                    return
        info: BlobInfo | None
        try:
            if scope.get("state", {}).get(HIDDEN):  # not the reader's to see (``readgate``): as if absent
                info = None
            else:
                known = self.storage.cached_info(key)
                info = await run_in_threadpool(self.storage.info, key) if known is False else known
        except ValueError:  # not a valid storage key
            info = None
        except StorageError:
            await _respond(send, 503, b"The package storage is unavailable; retry later")
            return
        if info is None:
            if _LEAF.fullmatch(key):  # registration leaves are answered from the database
                await self.app(scope, receive, send)
            else:
                await _respond(send, 404, b"Not found")
            return
        is_json = key.endswith(".json")
        if is_json:
            base = self.base_url(scope)
        else:
            base = ""  # only JSON documents carry the base URL
            if method == "GET" and key.endswith(".nupkg"):
                parts = key.split("/")
                self.on_download(parts[2], parts[3])
        if_none_match = if_modified_since = accept_encoding = b""
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
            elif name == b"if-modified-since":
                if_modified_since = value
        entry = self.cache.get((key, base), info.token)
        if entry is None:
            if not is_json and info.size > MAX_CACHED_BLOB:
                await self._send_large(scope, receive, send, key, info, if_none_match)
                return
            try:
                found = await run_in_threadpool(self.storage.get_with_info, key)
            except StorageError:
                await _respond(send, 503, b"The package storage is unavailable; retry later")
                return
            if found is None:
                await _respond(send, 404, b"Not found")
                return
            # Keyed by the token of the bytes read: ``info`` may be a moment older than them (it is
            # cached), and a body under a newer token than its own would be served until it changes again.
            entry = render(key, found[1], found[0], base, self.vary, self.fixed_base)
            self.cache.put((key, base), entry)
        if _matches(if_none_match, entry.etag) or (
            not if_none_match and if_modified_since == entry.last_modified
        ):
            await send({"type": "http.response.start", "status": 304, "headers": entry.validators})
            await send({"type": "http.response.body", "body": b""})
            return
        if entry.gzip_headers is not None and b"gzip" in accept_encoding:
            headers, body = entry.gzip_headers, entry.gzipped
        else:
            headers, body = entry.headers, entry.body
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def _send_large(
        self, scope: ASGIScope, receive: Receive, send: Send, key: str, info: BlobInfo, if_none_match: bytes
    ) -> None:
        """A package too large for the memory cache: redirect, zero-copy file, or a stream from storage."""
        etag = b'"' + hashlib.blake2b(info.token.encode(), digest_size=12).hexdigest().encode() + b'"'
        last_modified = formatdate(info.modified, usegmt=True).encode()
        validators = [(b"etag", etag), (b"last-modified", last_modified), (b"cache-control", IMMUTABLE_CACHE)]
        if _matches(if_none_match, etag):
            await send({"type": "http.response.start", "status": 304, "headers": validators})
            await send({"type": "http.response.body", "body": b""})
            return
        url = self.storage.download_url(key)
        if url is not None:
            await _respond(
                send, 302, b"", extra=[(b"location", url.encode()), (b"cache-control", b"no-cache")]
            )
            return
        kind = file_headers(key, b"")  # not read: an icon this large predates the check, and downloads
        local = self.storage.local_path(key)
        if local is not None:
            response = FileResponse(local, headers={k.decode(): v.decode() for k, v in [*kind, *validators]})
            await response(scope, receive, send)
            return
        headers = [*kind, *validators, (b"content-length", str(info.size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        # The status is sent: a storage failure now can only cut the body short, which the client detects.
        async for chunk in iterate_in_threadpool(self.storage.read_chunks(key)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    """If-None-Match: one ETag, a list of them (weak ones too, as RFC 9110 compares them), or ``*``."""
    return bool(if_none_match) and (etag in if_none_match or if_none_match.strip() == b"*")


async def _respond(send: Send, status: int, body: bytes, extra: Headers | None = None) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        *LOCKED_DOWN,
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
