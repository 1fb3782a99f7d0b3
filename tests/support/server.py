"""Run the real ``nugat serve`` as a subprocess (on SQLite or a fresh PostgreSQL database); drive its CLI."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from support.cli_zygote import Zygote


class Recorded(list[str]):
    """A list of the session's strings that is also written to ``$NUGAT_TEST_LEDGER/<name>.<pid>``.

    ``scripts/test`` runs most tests in parallel processes (pytest-xdist), then the last checks in one
    more process: the ledger, a folder shared by every process of the run, lets those checks read what
    each process recorded. Without the variable the list is this process's alone.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def append(self, item: str) -> None:
        super().append(item)
        ledger = os.environ.get("NUGAT_TEST_LEDGER")
        if ledger:
            with (Path(ledger) / f"{self.name}.{os.getpid()}").open("a", encoding="utf-8") as out:
                out.write(item + "\n")

    def of_the_run(self) -> list[str]:
        """What every process of the run recorded, this one's included."""
        found = dict.fromkeys(self)
        ledger = os.environ.get("NUGAT_TEST_LEDGER")
        if ledger:
            for path in sorted(Path(ledger).glob(f"{self.name}.*")):
                found.update(dict.fromkeys(path.read_text(encoding="utf-8").splitlines()))
        return list(found)


# Every server log written during the run (a test greps them all for leaked secrets).
LOG_FILES = Recorded("logs")
# Every API key and password the helpers created (the same test greps for them).
SECRETS = Recorded("secrets")
ZYGOTE = Zygote()  # runs NugatServer.cli's commands
atexit.register(ZYGOTE.close)

POSTGRES_ADMIN_DSN = os.environ.get(
    "NUGAT_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
)
POSTGRES_URL_PREFIX = os.environ.get(
    "NUGAT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
TEST_PASSWORD = "correct horse battery staple 42"


def nugat_command() -> list[str]:
    """The ``nugat`` console script of the interpreter running the tests (the project's .venv)."""
    script = Path(sys.executable).with_name("nugat")
    if script.exists():
        return [str(script)]
    found = shutil.which("nugat")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from nugat.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    """The caller's environment without any NUGAT_* setting that could leak into the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NUGAT_")}


# --------------------------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """Create a fresh, uniquely named database; yield its SQLAlchemy URL; drop it afterwards.

    Raises (never skips) when PostgreSQL is unreachable: the postgres tests must fail then.
    """
    import psycopg

    name = f"nugat_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable ({POSTGRES_ADMIN_DSN!r}); the postgres tests need it: {exc}"
        ) from exc
    with admin:
        _drop_orphans(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL_PREFIX}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_orphans(admin: Any) -> None:
    """Drop the databases of test processes that are gone (killed before their cleanup ran)."""
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'nugat\\_test\\_%'").fetchall()
    for (name,) in rows:
        pid = name.split("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------------- server


@dataclass
class NugatServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    database: str  # "sqlite" or "postgres"
    database_url: str | None
    log_path: Path
    workers: int = 1
    wrapper: tuple[str, ...] = ()  # a command that runs the server, such as an unshare for a tmpfs
    process: subprocess.Popen[bytes] | None = None
    users: set[str] = field(default_factory=set)
    _log: TextIO | None = None

    @property
    def source(self) -> str:
        return f"{self.url}/v3/index.json"

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the server's database (the embedded SQLite file unless postgres)."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'nugat.db').resolve()}"

    def cli(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``nugat <args>`` against the same data folder and database as the server (in a process
        forked from one that has imported nugat: ``cli_zygote``)."""
        proc = ZYGOTE.run(list(args), env=self.env, cwd=self.data_dir, input=input, timeout=timeout)
        print(f"$ nugat {' '.join(args)}\n[exit {proc.returncode}]\n{proc.stdout}{proc.stderr}")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`nugat {' '.join(args)}` failed with exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        resp = self.get(path, **kwargs)
        assert resp.status_code == 200, f"GET {path} -> {resp.status_code}: {resp.text[:2000]}"
        return resp.json()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- lifecycle

    def start(self, timeout: float = 30.0) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        self._log = self.log_path.open("a")
        argv = [
            *self.wrapper,
            *nugat_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
        ]
        self._log.write(f"### {' '.join(argv)}\n")
        self._log.flush()
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.data_dir,
            start_new_session=True,  # granian's workers are children: kill() reaches them by group
        )
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nugat serve exited with {self.process.returncode} before answering:\n{self.log_tail()}"
                )
            try:
                resp = httpx.get(self.source, timeout=2)
                if resp.status_code == 200:
                    return
                last_error = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"nugat serve did not answer GET {self.source} within {timeout} s ({last_error}):\n"
            + self.log_tail()
        )

    def stop(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """kill -9 the server and its workers, as a crash would; ``start()`` brings it back."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.stop()


@contextlib.contextmanager
def running_server(
    data_dir: Path,
    database: str = "sqlite",
    timeout: float = 30.0,
    extra_env: Mapping[str, str] | None = None,
    *,
    workers: int = 1,
    database_url: str | None = None,
    port: int | None = None,
) -> Iterator[NugatServer]:
    """A started ``nugat serve`` on a free port; ``database`` is ``"sqlite"`` or ``"postgres"``;
    ``extra_env``: more ``NUGAT_*`` settings for the server and its CLI; ``workers``: server processes;
    ``database_url``: an existing PostgreSQL database to share (else a fresh one is made and dropped);
    ``port``: the port to listen on (one the settings name, from ``free_port()``), else a free one."""
    if database not in {"sqlite", "postgres"}:
        raise ValueError(database)
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        env = base_env()
        env.update(extra_env or {})
        env["NUGAT_DATA_DIR"] = str(data_dir)
        if database == "postgres":
            database_url = database_url or stack.enter_context(postgres_database())
            env["NUGAT_DATABASE_URL"] = database_url
        log_path = data_dir / "server.log"
        LOG_FILES.append(str(log_path))
        server = NugatServer(
            url=f"http://127.0.0.1:{port or free_port()}",
            data_dir=data_dir,
            env=env,
            database=database,
            database_url=database_url,
            log_path=log_path,
            workers=workers,
        )
        stack.callback(server.stop)  # runs before the database is dropped
        server.start(timeout=timeout)
        yield server


# ------------------------------------------------------------------------------------------ users and keys


def ensure_user(server: NugatServer, user: str, password: str = TEST_PASSWORD) -> None:
    if user in server.users:
        return
    server.cli(
        "user",
        "create",
        user,
        "--email",
        f"{user}@example.test",
        "--password-stdin",
        input=password + "\n",
        check=True,
    )
    server.users.add(user)
    SECRETS.append(password)


def create_key(
    server: NugatServer,
    user: str,
    scopes: Sequence[str],
    globs: Sequence[str] = (),
    packages: Sequence[str] = (),
    expires_in_days: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Create the user if needed and an API key for them; return the ``--json`` answer
    (``{"id", "key", "name", "scopes", "globs", "packages", "expires"}``).

    A key must select packages; with neither ``globs`` nor ``packages`` it gets the glob ``*``.
    """
    ensure_user(server, user)
    if not globs and not packages:
        globs = ("*",)
    args = ["key", "create", "--user", user, "--name", name or f"test-{secrets.token_hex(4)}"]
    for scope in scopes:
        args += ["--scope", scope]
    for glob in globs:
        args += ["--glob", glob]
    for package in packages:
        args += ["--package", package]
    if expires_in_days is not None:
        args += ["--expires-in-days", str(expires_in_days)]
    proc = server.cli(*args, "--json", check=True)
    info = json.loads(proc.stdout)
    assert isinstance(info, dict) and info.get("key"), proc.stdout
    SECRETS.append(info["key"])
    return info


def user_key(
    server: NugatServer,
    user: str,
    scopes: Sequence[str],
    globs: Sequence[str] = (),
    packages: Sequence[str] = (),
    expires_in_days: int | None = None,
) -> str:
    """The secret of a new API key for ``user`` (created if needed); all packages unless limited."""
    return str(create_key(server, user, scopes, globs, packages, expires_in_days)["key"])


def set_key_expiry(server: NugatServer, key_id: str, expires_at: datetime) -> None:
    """Write ``api_keys.expires_at`` (naive UTC) straight into the server's database."""
    import sqlalchemy as sa

    engine = sa.create_engine(server.db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                sa.text("UPDATE api_keys SET expires_at = :at WHERE key_id = :key_id"),
                {"at": expires_at.replace(tzinfo=None), "key_id": key_id},
            )
            assert result.rowcount == 1, f"no api_keys row with key_id={key_id!r}"
    finally:
        engine.dispose()
