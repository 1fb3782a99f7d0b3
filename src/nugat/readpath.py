"""The restore hot path: stored V3 documents and packages served from memory, without a framework.

Every flat-container and registration request lands here before any routing. The stored blob is
checked with one cheap ``version_token`` (a ``stat`` on the filesystem backend), so a change written
by any process is seen on the next request; the body, its gzip form and its ETag are computed once
per change and per base URL, and kept in a bounded LRU cache.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from nugat.protocol import BASE
from nugat.storage import Storage

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIXES = ("/v3/flatcontainer/", "/v3/registration/", "/v3/registration-semver2/")
MAX_CACHED_BLOB = 1 << 20


def content_type_for(key: str) -> bytes:
    if key.endswith(".json"):
        return b"application/json; charset=utf-8"
    if key.endswith(".nuspec"):
        return b"text/xml; charset=utf-8"
    if key.endswith("/readme"):
        return b"text/markdown; charset=utf-8"
    return b"application/octet-stream"


@dataclass(frozen=True)
class Entry:
    token: str
    body: bytes
    gzipped: bytes | None
    etag: bytes


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


def render(key: str, token: str, raw: bytes, base: str) -> Entry:
    is_json = key.endswith(".json")
    body = raw.replace(BASE.encode(), base.encode()) if is_json else raw
    gzipped = gzip.compress(body, compresslevel=6, mtime=0) if is_json and len(body) > 512 else None
    etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
    return Entry(token, body, gzipped, etag)


class ReadPath:
    """ASGI middleware: answers GET/HEAD of stored V3 documents, passes everything else to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        storage: Storage,
        base_url: Callable[[Scope], str],
        on_download: Callable[[str, str], None],
        cache: DocumentCache | None = None,
    ) -> None:
        self.app = app
        self.storage = storage
        self.base_url = base_url
        self.on_download = on_download
        self.cache = cache or DocumentCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        try:
            token = self.storage.version_token(key)
        except ValueError:  # not a valid storage key
            token = None
        if token is None:
            await _respond(send, 404, b"Not found")
            return
        is_nupkg = key.endswith(".nupkg")
        if is_nupkg and method == "GET":
            parts = key.split("/")
            self.on_download(parts[2], parts[3])
        base = self.base_url(scope)
        entry = self.cache.get((key, base), token)
        if entry is None:
            local = self.storage.local_path(key)
            if is_nupkg and local is not None and local.stat().st_size > MAX_CACHED_BLOB:
                await self._send_file(scope, send, local, token)
                return
            raw = self.storage.get_bytes(key)
            if raw is None:
                await _respond(send, 404, b"Not found")
                return
            entry = render(key, token, raw, base)
            self.cache.put((key, base), entry)
        headers = [
            (b"content-type", content_type_for(key)),
            (b"etag", entry.etag),
            (
                b"cache-control",
                b"public, max-age=60" if key.endswith(".json") else b"public, max-age=31536000, immutable",
            ),
        ]
        if _header(scope, b"if-none-match") == entry.etag:
            await _respond(send, 304, b"", extra=headers[1:])
            return
        body = entry.body
        if entry.gzipped is not None:
            headers.append((b"vary", b"accept-encoding"))
            if b"gzip" in _header(scope, b"accept-encoding"):
                body = entry.gzipped
                headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    async def _send_file(self, scope: Scope, send: Send, local: Any, token: str) -> None:
        from starlette.responses import FileResponse

        etag = '"' + hashlib.blake2b(token.encode(), digest_size=12).hexdigest() + '"'
        response = FileResponse(
            local,
            media_type="application/octet-stream",
            headers={"etag": etag, "cache-control": "public, max-age=31536000, immutable"},
        )
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return b""


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
