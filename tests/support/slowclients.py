"""Slow clients, as an attacker holds them open, and a normal client timing its requests meanwhile.

``SlowClients`` keeps ``count`` connections open to a server from its source addresses (one, or many
to stay under a per-address limit), in three kinds in turn: headers sent one line per tick and never
finished, a form body declared large and sent one byte per tick, and idle keep-alive connections after
one complete request (``GET /v3/index.json``). A connection the server closes is opened again at the
next tick, as an attacker would. Everything runs in one thread on non-blocking sockets and is bounded:
``count`` sockets, stopped by ``stop()`` (or the context manager).

Used by tests/hostile/test_slow_clients.py (a smaller figure) and benchmarks/slow_clients.py (the full one).
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

KINDS = ("headers", "body", "idle")


def raise_fd_limit(needed: int) -> None:
    """Raise this process's open-file limit (soft to hard) when ``needed`` descriptors would not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class _Conn:
    kind: str
    sock: socket.socket
    ticks: int = 0


@dataclass
class SlowClients:
    host: str
    port: int
    count: int
    sources: tuple[str, ...] = ("127.0.0.2",)
    tick: float = 1.0  # seconds between two trickled bytes (or header lines) on each connection
    opened: int = 0
    reopened: int = 0
    failed: int = 0  # connection attempts the server (or its backlog) refused
    _next: int = 0
    _conns: dict[int, _Conn] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _selector: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)

    @property
    def open_now(self) -> int:
        return len(self._conns)

    def start(self, ramp_seconds: float = 10.0) -> None:
        """Open every connection (within ``ramp_seconds``), then keep them slow until ``stop``."""
        raise_fd_limit(self.count + 256)
        deadline = time.monotonic() + ramp_seconds
        for i in range(self.count):
            if time.monotonic() > deadline:
                break
            self._open(KINDS[i % len(KINDS)])
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._selector.close()

    def __enter__(self) -> SlowClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one connection

    def _open(self, kind: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.bind((self.sources[self._next % len(self.sources)], 0))
            self._next += 1
            sock.settimeout(2)
            sock.connect((self.host, self.port))
            sock.setblocking(False)
            sock.sendall(self._first_bytes(kind))
        except OSError:
            sock.close()
            self.failed += 1
            return
        conn = _Conn(kind, sock)
        self._conns[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, conn)
        self.opened += 1

    def _first_bytes(self, kind: str) -> bytes:
        host = f"Host: {self.host}:{self.port}\r\n"
        if kind == "headers":
            return f"GET /signin HTTP/1.1\r\n{host}".encode()
        if kind == "body":
            return (
                f"POST /signin HTTP/1.1\r\n{host}Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 60000\r\n\r\nlogin="
            ).encode()
        return f"GET /v3/index.json HTTP/1.1\r\n{host}\r\n".encode()

    def _close(self, conn: _Conn) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    # -- the loop

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=max(0.0, min(0.2, next_tick - time.monotonic()))):
                self._readable(key.data)
            if time.monotonic() >= next_tick:
                next_tick += self.tick
                self._trickle()
                self._refill()

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the server closed it (a timeout, or the answer to a refused request)
            self._close(conn)

    def _trickle(self) -> None:
        for conn in list(self._conns.values()):
            if conn.kind == "idle":
                continue
            conn.ticks += 1
            piece = f"X-Slow-{conn.ticks}: {'a' * 8}\r\n".encode() if conn.kind == "headers" else b"a"
            try:
                conn.sock.send(piece)
            except BlockingIOError:
                pass
            except OSError:
                self._close(conn)

    def _refill(self) -> None:
        """Open again, as an attacker does, what the server closed."""
        missing = self.count - len(self._conns)
        for i in range(missing):
            if self._stop.is_set():
                return
            self._open(KINDS[(self.opened + i) % len(KINDS)])
            self.reopened += 1


@dataclass(frozen=True)
class Timings:
    seconds: list[float]  # each request's time, a failed one counted as the timeout
    failures: int

    def quantile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def worst(self) -> float:
        return max(self.seconds)


def timed_requests(
    host: str,
    port: int,
    path: str,
    count: int,
    *,
    source: str = "127.0.0.1",
    timeout: float = 10.0,
    pause: float = 0.05,
    budget: float = float("inf"),
) -> Timings:
    """``count`` GETs of ``path`` one after another, each on a new connection (as a first visit), timed
    from connect to the end of the answer; an answer other than 200, or none in ``timeout``, is a failure.
    Past ``budget`` seconds in all, the requests not sent count as failures of ``timeout`` seconds."""
    seconds, failures = [], 0
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    deadline = time.monotonic() + budget
    for _ in range(count):
        started = time.monotonic()
        if started > deadline:
            seconds.append(timeout)
            failures += 1
            continue
        ok = _one_request(host, port, source, request, timeout)
        seconds.append(time.monotonic() - started if ok else timeout)
        failures += not ok
        time.sleep(pause)
    return Timings(seconds, failures)


def _one_request(host: str, port: int, source: str, request: bytes, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout, source_address=(source, 0)) as sock:
            sock.sendall(request)
            data = b""
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def addresses(count: int, prefix: str = "127.0.8") -> tuple[str, ...]:
    """``count`` loopback source addresses, ``prefix.1`` on."""
    return tuple(f"{prefix}.{i + 1}" for i in range(count))
