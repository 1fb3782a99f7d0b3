"""Run one ASGI call to completion from a synchronous test.

Playwright's sync API leaves an event loop running in the main thread for the whole session once the browser
tests have run, so `asyncio.run` there fails; a short-lived thread has no loop of its own yet.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(call: Coroutine[Any, Any, T]) -> T:
    """Run `call` on a fresh event loop in its own thread; its result, or what it raised, re-raised."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(call))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]  # type: ignore[no-any-return]
