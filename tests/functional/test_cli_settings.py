"""``nugat`` refuses a setting it cannot use, before doing anything, in one line naming it (exit 2, no
traceback); makes no data folder a command does not use; and asks for the password it does not get."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nugat.cli import main
from nugat.storage import StorageError
from nugat.storage.s3 import S3Storage

SECRET = "k" * 40
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """``run(*args, stdin="")``: (exit code, stdout, stderr) of ``nugat`` in an empty folder, no terminal."""
    for name in ("NUGAT_DATA_DIR", "NUGAT_DATABASE_URL", "NUGAT_STORAGE_URL", "NUGAT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def nugat(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield nugat


def refused(result: tuple[int, str, str], *expected: str) -> None:
    code, out, err = result
    assert code == 2, (out, err)
    assert err.startswith("nugat: ") and err.count("\n") == 1, err  # one line
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("NUGAT_PORT", "abc", "NUGAT_PORT must be a whole number from 0 to 65535, not 'abc'"),
        ("NUGAT_UPLOAD_IDLE_TIMEOUT", "0", "NUGAT_UPLOAD_IDLE_TIMEOUT must be a number of seconds above 0"),
        ("NUGAT_MAIL_RETRY_SECONDS", "abc", "NUGAT_MAIL_RETRY_SECONDS must be a number of seconds above 0"),
        (
            "NUGAT_MAX_PACKAGE_BYTES",
            "-1",
            "NUGAT_MAX_PACKAGE_BYTES must be a whole number of bytes, 1 or more",
        ),
        ("NUGAT_ALLOW_SIGNUP", "enabled", "NUGAT_ALLOW_SIGNUP must be true/false, 1/0, yes/no or on/off"),
        ("NUGAT_DATABASE_URL", "garbage", "NUGAT_DATABASE_URL must be a database URL (sqlite:////"),
        ("NUGAT_DATABASE_URL", "postgres://u@h/db", "NUGAT_DATABASE_URL must be a database URL"),
    ],
)
def test_any_command_refuses_a_setting_it_cannot_use_in_one_line_naming_it(
    run: Run, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    result = run("user", "list")
    refused(result, expected)
    assert "NUGAT_LOG_FORMAT" not in result[2]  # every ValueError was once blamed on it


@pytest.mark.parametrize(
    ("url", "cache", "expected"),
    [
        ("ftp://files.example.test/nuget", None, "unsupported storage URL"),
        ("file:///proc/nope", None, "No such file or directory: /proc/nope"),
        ("s3://bucket/feed?region=eu-west-1&cache_seconds=zz", None, "cache_seconds is a number of seconds"),
        ("s3://bucket/feed?region=eu-west-1", "abc", "NUGAT_S3_CACHE_SECONDS is a number of seconds"),
        ("s3://bucket/feed?redirect=enabled", None, "redirect is true/false, 1/0, yes/no or on/off"),
    ],
)
@pytest.mark.parametrize("command", [["rebuild"], ["serve", "--port", "0"]])
def test_a_storage_url_nugat_cannot_open_stops_the_start_before_the_database_is_touched(
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: list[str],
    url: str,
    cache: str | None,
    expected: str,
) -> None:
    monkeypatch.setenv("NUGAT_STORAGE_URL", url)
    if cache is not None:
        monkeypatch.setenv("NUGAT_S3_CACHE_SECONDS", cache)
    refused(run(*command, "--data-dir", str(tmp_path / "data")), "(NUGAT_STORAGE_URL: ", expected)
    assert not (tmp_path / "data" / "nugat.db").exists()


def test_an_unknown_s3_url_parameter_is_refused_not_ignored() -> None:
    """A misspelt ``endpoint_url`` once sent the traffic to AWS itself."""
    with pytest.raises(
        StorageError, match=r"unknown S3 storage URL parameter endpoint: known are .*endpoint_url"
    ):
        S3Storage.from_url("s3://bucket/feed?endpoint=http://minio.internal:9000&region=x")
    storage = S3Storage.from_url(
        "s3://bucket/feed?endpoint_url=http://minio.internal:9000&redirect=ON&region="
    )
    assert storage.redirect is True and storage.cache_seconds == 1


def test_commands_on_a_production_setup_make_no_data_folder(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "db").mkdir()
    monkeypatch.setenv("NUGAT_DATABASE_URL", f"sqlite:///{tmp_path / 'db' / 'nugat.db'}")
    monkeypatch.setenv("NUGAT_STORAGE_URL", "s3://bucket/feed?region=eu-west-1")
    monkeypatch.setenv("NUGAT_SECRET_KEY", SECRET)
    nugat = run
    code, out, err = nugat("user", "create", "alice", "--email", "alice@example.test", "--password-stdin",
                           stdin="a-long-passphrase-4-alice\n")  # fmt: skip
    assert (code, out) == (0, "created user alice\n"), err
    assert nugat("key", "create", "--user", "alice", "--name", "ci", "--scope", "push", "--glob", "*")[0] == 0
    assert nugat("user", "list")[1] == "alice  alice@example.test\n"
    assert [p.name for p in tmp_path.iterdir()] == ["db"]  # no ./nugat-data
    # The server still makes it (it receives uploads in its tmp/): here it stops at once, the port taken.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = nugat("serve", "--port", str(taken.getsockname()[1]))
    assert code == 2 and "already in use" in err, err
    assert (tmp_path / "nugat-data").is_dir()


def test_user_create_without_a_terminal_says_the_user_has_no_password(run: Run, tmp_path: Path) -> None:
    """A script's ``nugat user create`` still makes the user (its keys come from ``nugat key create``), and
    says it has no password unless --no-password said that is meant."""
    nugat = run
    data = ["--data-dir", str(tmp_path / "data")]
    code, out, err = nugat("user", "create", "bob", "--email", "bob@example.test", *data)
    assert (code, out) == (0, "created user bob\n")
    assert "nugat: no terminal to ask a password: bob has none, and cannot sign in" in err
    code, out, err = nugat("user", "create", "dave", "--email", "dave@example.test", "--no-password", *data)
    assert (code, out) == (0, "created user dave\n") and "no terminal" not in err
    assert nugat("user", "list", *data)[1] == "bob  bob@example.test\ndave  dave@example.test\n"
    with pytest.raises(SystemExit):  # both: argparse refuses
        nugat(
            "user", "create", "carol", "--email", "c@example.test", "--no-password", "--password-stdin", *data
        )
