"""A TCP proxy a test controls: it passes traffic, or goes silent as a partitioned peer does.

Silent, it accepts connections and reads every byte but never forwards or answers anything (its kernel
still acknowledges: what a proxy cut from its backend, or a frozen server, looks like to a client).
Connections silenced stay so; connections made after ``passing()`` are forwarded again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class SilentProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        self.silent = True

    def passing(self) -> None:
        self.silent = False

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            upstream = None
            if not self.silent:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                    self.sockets.append(upstream)
                except OSError:
                    client.close()
                    continue
            state = {"silenced": upstream is None}
            threading.Thread(target=self._pump, args=(client, upstream, state), daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pump, args=(upstream, client, state), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None, state: dict[str, bool]) -> None:
        try:
            while True:
                data = source.recv(65536)
                if self.silent:
                    state["silenced"] = True
                if state["silenced"]:
                    if not data:
                        return  # an end of file is swallowed too: the other side is kept open
                    continue
                if not data:
                    break
                assert sink is not None
                sink.sendall(data)
        except OSError:
            pass
        if not state["silenced"]:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()  # type: ignore[union-attr]

    def close(self) -> None:
        self.closed = True
        for s in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                s.close()


@contextlib.contextmanager
def silent_proxy(target: tuple[str, int]) -> Iterator[SilentProxy]:
    proxy = SilentProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()
