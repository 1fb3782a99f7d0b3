"""Prometheus metrics at ``/metrics``: requests by route class and status, their latency, pushes by
result, and refused API keys by reason.

The hot path only adds to plain counters in the process (a clock read, a bisect and three increments:
about half a microsecond, where prometheus-client's multiprocess mode costs several, as its every
increment writes a memory-mapped file). With ``nugat serve --workers N`` each worker also saves its
counts, once a second when they changed, as ``<pid>-<start>.json`` in the folder ``nugat serve`` names
in ``NUGAT_METRICS_DIR``; a scrape sums every file there, so it sees the whole server whichever worker
answers, at most a second behind. A worker that exits leaves its file, so the sums never go down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import threading
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from nugat.proxies import normalized

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PUSH_RESULTS = ("created", "conflict", "invalid", "refused", "error", "other")
AUTH_REASONS = ("missing", "malformed", "unknown", "expired", "revoked", "disabled", "throttled")
_PUSH_BY_STATUS = {201: "created", 409: "conflict", 400: "invalid", 413: "invalid", 401: "refused"}
_PUSH_BY_STATUS |= {403: "refused", 429: "refused"}
_DURATION = "nugat_http_request_duration_seconds"


def may_scrape(client: str, authorization: str | None, token: str | None) -> bool:
    """Whether ``/metrics`` answers: a client on this host (a loopback address, as ``client_address``
    resolves it behind a trusted proxy), or one sending ``Authorization: Bearer <token>`` when a token is
    set. The counts name no package, but how busy a private feed is, and how many keys it refuses, is
    nobody else's business. Digests are compared, in constant time, so not even the length leaks."""
    if token is not None and authorization is not None:
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(token.encode()).digest()
        ):
            return True
    address = normalized(client)
    return address is not None and address.is_loopback


# Where else NuGet 2.x pushes and deletes (= unlists): the source URL it is given (protocol/publish).
_OTHER_PUSH_PATHS = frozenset(("/api/v2", "/api/v2/", "/v3/index.json", "/v3/index.json/"))
_OTHER_UNLIST_PREFIXES = ("/api/v2/", "/v3/index.json/")


def route_class(method: str, path: str) -> str:
    if method in ("PUT", "POST") and path in _OTHER_PUSH_PATHS:
        return "push"
    if method == "DELETE" and path.startswith(_OTHER_UNLIST_PREFIXES):
        return "unlist"
    if path.startswith("/v3/flatcontainer/"):
        if path.endswith("/index.json"):
            return "flat_index"
        return "nupkg" if path.endswith(".nupkg") else "flat_file"
    if path.startswith("/v3/registration"):
        return "registration"
    if path.startswith("/api/v2/package"):
        if method in ("GET", "HEAD"):
            return "v2_download"
        if method == "DELETE":
            return "unlist"
        return "relist" if method == "POST" and path.count("/") >= 5 else "push"
    if path.startswith("/api/v2"):
        return "v2"
    if path.startswith("/v3/"):
        return {"/v3/index.json": "service_index", "/v3/search": "search"}.get(path, "v3_other")
    return {"/health": "health", "/metrics": "metrics"}.get(path, "web")


def push_result(status: int) -> str:
    return _PUSH_BY_STATUS.get(status, "error" if status >= 500 else "other")


class Recorder:
    """One process's counts (requests are recorded on the event loop; key failures in threads)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        # route -> a count per bucket of BUCKETS, then the count above the last one, then the sum
        self.latency: dict[str, list[float]] = {}
        self.pushes = dict.fromkeys(PUSH_RESULTS, 0)
        self.auth_failures = dict.fromkeys(AUTH_REASONS, 0)
        self.changes = 0
        self.lock = threading.Lock()
        self._pid = 0
        self._file_name = ""

    @property
    def file_name(self) -> str:
        """Where this process saves its counts (each forked worker under its own name)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._file_name = f"{self._pid}-{time.time_ns()}.json"
        return self._file_name

    def request(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = [0] * (len(BUCKETS) + 2)
        hist[bisect_left(BUCKETS, seconds)] += 1
        hist[-1] += seconds
        if route == "push":
            self.pushes[push_result(status)] += 1
        self.changes += 1

    def auth_failure(self, reason: str) -> None:
        with self.lock:
            self.auth_failures[reason] += 1
            self.changes += 1

    def snapshot(self) -> dict[str, Any]:
        # dict.copy() runs without a thread switch: a scrape in a thread never sees a dict change size
        return {
            "requests": [[route, status, n] for (route, status), n in self.requests.copy().items()],
            "latency": {route: list(hist) for route, hist in self.latency.copy().items()},
            "pushes": dict(self.pushes),
            "auth_failures": dict(self.auth_failures),
        }


RECORDER = Recorder()


def auth_failure(reason: str) -> None:
    """Count a refused API key: missing, malformed, unknown (or revoked), expired, throttled."""
    RECORDER.auth_failure(reason)


class Instrumented:
    """ASGI middleware counting every HTTP request by route class and status, with its duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            RECORDER.request(route_class(scope["method"], scope["path"]), status, time.perf_counter() - start)


_save_lock = threading.Lock()


def save(directory: Path) -> None:
    """Write this process's counts where the other workers' scrapes find them (atomically).

    The once-a-second task and a scrape's own save run in different threads: the lock keeps them from
    renaming one temp file twice.
    """
    name = RECORDER.file_name
    tmp = directory / f".{name}"
    with _save_lock:
        tmp.write_text(json.dumps(RECORDER.snapshot()))
        tmp.replace(directory / name)


def server_dir(tmp_dir: Path) -> Path:
    """A new folder for the workers of this ``nugat serve``; those of servers no longer running go."""
    for old in tmp_dir.glob("metrics-*"):
        pid = old.name.removeprefix("metrics-")
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass
    directory = tmp_dir / f"metrics-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


async def save_every_second(directory: Path) -> None:
    saved = -1
    while True:
        await asyncio.sleep(1.0)
        if RECORDER.changes != saved:
            saved = RECORDER.changes
            save(directory)


def _snapshots(directory: Path | None) -> Iterator[dict[str, Any]]:
    if directory is None:
        yield RECORDER.snapshot()
        return
    save(directory)
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            yield json.loads(path.read_text())


def exposition(directory: Path | None) -> bytes:
    """The Prometheus text format of this process's counts, or of all those saved in ``directory``."""
    requests: dict[tuple[str, int], int] = {}
    latency: dict[str, list[float]] = {}
    pushes = dict.fromkeys(PUSH_RESULTS, 0)
    auth = dict.fromkeys(AUTH_REASONS, 0)
    for snap in _snapshots(directory):
        for route, status, n in snap["requests"]:
            requests[(route, status)] = requests.get((route, status), 0) + n
        for route, hist in snap["latency"].items():
            total = latency.setdefault(route, [0] * (len(BUCKETS) + 2))
            for i, value in enumerate(hist):
                total[i] += value
        for name, n in snap["pushes"].items():
            pushes[name] = pushes.get(name, 0) + n
        for name, n in snap["auth_failures"].items():
            auth[name] = auth.get(name, 0) + n
    lines = [
        "# HELP nugat_http_requests_total HTTP requests by route class and status.",
        "# TYPE nugat_http_requests_total counter",
        *(
            f'nugat_http_requests_total{{route="{route}",status="{status}"}} {n}'
            for (route, status), n in sorted(requests.items())
        ),
        f"# HELP {_DURATION} Time to answer a request, by route class.",
        f"# TYPE {_DURATION} histogram",
    ]
    for route, hist in sorted(latency.items()):
        cumulative = 0
        for bound, count in zip((*BUCKETS, "+Inf"), hist[:-1], strict=True):
            cumulative += int(count)
            lines.append(f'{_DURATION}_bucket{{route="{route}",le="{bound}"}} {cumulative}')
        lines.append(f'{_DURATION}_sum{{route="{route}"}} {hist[-1]!r}')
        lines.append(f'{_DURATION}_count{{route="{route}"}} {cumulative}')
    lines += [
        "# HELP nugat_pushes_total Package pushes by result.",
        "# TYPE nugat_pushes_total counter",
        *(f'nugat_pushes_total{{result="{name}"}} {n}' for name, n in pushes.items()),
        "# HELP nugat_auth_failures_total Refused API keys by reason.",
        "# TYPE nugat_auth_failures_total counter",
        *(f'nugat_auth_failures_total{{reason="{name}"}} {n}' for name, n in auth.items()),
    ]
    return ("\n".join(lines) + "\n").encode()
