"""PostgreSQL stops answering (a partition, a proxy cut from its backend, a frozen server): requests
fail with a 503 within a bounded time instead of hanging, and the server recovers once it answers again.

The database is reached through a proxy the test silences: it accepts connections and acknowledges every
byte but never answers, so this is what the application itself must notice (``db._SilenceWatch`` and
``connect_timeout``), not the kernel's keepalives."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.server import postgres_database, running_server
from support.silentproxy import silent_proxy

pytestmark = pytest.mark.e2e

BOUND = 40.0  # seconds: silence noticed (10), a probe's connect (5), the pool's new connection (5), margin


def timed(url: str) -> tuple[int, float]:
    start = time.monotonic()
    try:
        status = httpx.get(url, timeout=BOUND + 20).status_code
    except httpx.TimeoutException:
        status = -1
    return status, time.monotonic() - start


def test_a_silent_database_gives_503_in_bounded_time_then_recovers(tmp_path: Path) -> None:
    with postgres_database() as url, silent_proxy(("127.0.0.1", 5432)) as proxy:
        proxied = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        assert proxied != url
        with running_server(tmp_path / "data", "postgres", database_url=proxied) as server:
            assert server.get("/health").status_code == 200
            assert server.get("/v3/search", params={"q": "x"}).status_code == 200
            time.sleep(1.5)  # pooled connections idle: the next use pings them first
            proxy.silence()
            paths = ["/health", "/v3/search?q=y", "/v3/flatcontainer/none.such/index.json"]
            with ThreadPoolExecutor(len(paths)) as pool:
                answers = dict(zip(paths, pool.map(lambda p: timed(server.url + p), paths), strict=True))
            print(answers)
            for path, (status, seconds) in answers.items():
                assert seconds < BOUND, f"{path} took {seconds:.0f} s"
                assert status in (503, 404) if "flatcontainer" in path else status == 503, (path, status)
            assert "database unavailable" in server.log_tail(200) or answers["/health"][0] == 503

            proxy.passing()
            deadline = time.monotonic() + 30
            while server.get("/health").status_code != 200:
                assert time.monotonic() < deadline, "the server did not recover within 30 s"
                time.sleep(0.5)
            assert server.get("/v3/search", params={"q": "x"}).status_code == 200


def test_connection_defaults_apply_and_the_url_overrides_them() -> None:
    from nugat.db import PG_CONNECT_DEFAULTS, POOL_TIMEOUT_SECONDS, make_engine

    with postgres_database() as url:
        engine = make_engine(f"{url}?keepalives_idle=30&connect_timeout=7")
        try:
            assert engine.pool.timeout() == POOL_TIMEOUT_SECONDS  # type: ignore[attr-defined]
            with engine.connect() as connection:
                params = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        finally:
            engine.dispose()
    assert params["keepalives_idle"] == "30"
    assert params["connect_timeout"] == "7"
    for name in ("keepalives", "keepalives_interval", "keepalives_count", "tcp_user_timeout"):
        assert params[name] == PG_CONNECT_DEFAULTS[name], name
