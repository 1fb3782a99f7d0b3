"""A real SMTP server on the loopback for the mail tests (aiosmtpd's controller): it keeps every message
it is sent, and can be stopped and started again on the same port (the "SMTP server down" tests)."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs each connection at INFO from its own thread, which can outlive a test's captured log
# stream ("I/O operation on closed file" noise in the output); its warnings and errors still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    def links(self) -> list[str]:
        return re.findall(r"https?://\S+", self.text)

    def link(self, path_part: str) -> str:
        """The one link of the text body whose URL contains ``path_part``, as a path on the site."""
        found = [u for u in self.links() if path_part in u]
        assert len(found) == 1, (path_part, self.text)
        return "/" + found[0].split("/", 3)[3]


class _Handler:
    def __init__(self, box: MailBox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.box.lock:
            self.box.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


class MailBox:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailBox:
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, match: Callable[[Received], bool], timeout: float = 30.0) -> Received:
        """The first message ``match`` accepts, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.received if match(m)]
            if found:
                return found[0]
            time.sleep(0.02)
        with self.lock:
            seen = [(m.recipients, m.subject) for m in self.received]
        raise AssertionError(f"no such mail within {timeout} s; received: {seen}")

    def to(self, address: str, subject_part: str = "", timeout: float = 30.0) -> Received:
        return self.wait_for(lambda m: address in m.recipients and subject_part in m.subject, timeout)

    def count(self, match: Callable[[Received], bool]) -> int:
        with self.lock:
            return sum(1 for m in self.received if match(m))
