"""The command line over a key's whole life (issue 11): ``key revoke``, ``key edit`` keeping scopes,
``key regenerate`` renewing an expired key, ``user disable|enable|delete``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from nugat.cli import main
from nugat.clock import utcnow
from nugat.core import Core
from nugat.db.models import ApiKey
from nugat.keys import Scope
from nugat.services import KeyRefused
from nugat.settings import Settings
from support.zips import package


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("NUGAT_DATA_DIR", raising=False)
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # noqa: SIM115 (closed by pytest's teardown)
    yield tmp_path / "data"


def nugat(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args[:2], "--data-dir", str(data_dir), *args[2:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_and_users_over_their_life_from_the_command_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("alice", "bob", "carol"):
        assert (
            nugat(
                data_dir, capsys, "user", "create", name, "--email", f"{name}@example.test", "--no-password"
            )[0]
            == 0
        )
    assert nugat(data_dir, capsys, "org", "create", "Contoso", "--admin", "alice")[0] == 0
    assert nugat(data_dir, capsys, "org", "add-member", "Contoso", "bob", "--role", "collaborator")[0] == 0
    create = ["--scope", "push", "--glob", "*", "--json"]
    code, out, _ = nugat(
        data_dir, capsys, "key", "create", "--user", "bob", "--name", "ci", "--owner", "Contoso", *create
    )
    org_key = json.loads(out)
    code, out, _ = nugat(
        data_dir,
        capsys,
        "key",
        "create",
        "--user",
        "bob",
        "--name",
        "own",
        *create,
        "--expires-in-days",
        "30",
    )
    own_key = json.loads(out)
    # names are unique per user, whatever their case
    code, _, err = nugat(data_dir, capsys, "key", "create", "--user", "bob", "--name", "CI", *create)
    assert code == 1 and "bob already has an API key named 'CI'" in err
    # an edit never widens scopes
    code, _, err = nugat(data_dir, capsys, "key", "edit", "--user", "bob", org_key["id"], "--scope", "unlist")
    assert code == 1 and "A key's scopes cannot change" in err
    code, out, _ = nugat(
        data_dir, capsys, "key", "edit", "--user", "bob", org_key["id"], "--glob", "Contoso.*", "--json"
    )
    assert code == 0 and json.loads(out)["globs"] == ["Contoso.*"]
    # a collaborator cannot revoke the org's keys; an admin can, and it shows in bob's list
    code, _, err = nugat(
        data_dir, capsys, "key", "revoke", "--owner", "Contoso", "--by", "bob", org_key["id"]
    )
    assert code == 1 and "Only administrators of Contoso can revoke its keys" in err
    code, out, _ = nugat(
        data_dir, capsys, "key", "revoke", "--owner", "Contoso", "--by", "alice", org_key["id"]
    )
    assert code == 0 and "revoked by alice, an administrator of Contoso" in out
    code, out, _ = nugat(data_dir, capsys, "key", "list", "--user", "bob", "--json")
    listed = {k["name"]: k for k in json.loads(out)}
    assert (listed["ci"]["state"], listed["own"]["state"]) == ("revoked", "active")
    code, _, err = nugat(data_dir, capsys, "key", "regenerate", "--user", "bob", org_key["id"])
    assert code == 1 and "cannot be regenerated" in err
    # an expired key regenerates, renewed for its 30 days
    core = Core(Settings(data_dir=data_dir))
    try:
        with core.db.session() as s:
            s.execute(
                update(ApiKey)
                .where(ApiKey.key_id == own_key["id"])
                .values(expires_at=utcnow() - timedelta(days=3))
            )
        code, out, _ = nugat(data_dir, capsys, "key", "regenerate", "--user", "bob", own_key["id"], "--json")
        renewed = json.loads(out)
        assert code == 0 and renewed["state"] == "active" and renewed["lifetime_days"] == 30
        # carol alone owns a package: deleting her needs a new owner
        _, carol_secret = core.accounts.create_key("carol", "k", ["push"], ["*"], [], None)
        grant, _ = core.accounts.verify_key(carol_secret, "127.0.0.1")
        upload = data_dir / "carol.nupkg"
        upload.write_bytes(package("Carol.Lib", "1.0.0"))
        core.packages.push(upload, grant, "127.0.0.1")
    finally:
        core.close()
    code, _, err = nugat(data_dir, capsys, "user", "delete", "carol")
    assert code == 1 and "carol is the only owner of Carol.Lib" in err and "--transfer-to" in err
    code, out, _ = nugat(data_dir, capsys, "user", "delete", "carol", "--transfer-to", "Contoso")
    assert code == 0 and "Contoso now owns Carol.Lib" in out
    code, _, err = nugat(data_dir, capsys, "user", "delete", "alice")
    assert code == 1 and "alice is the only administrator of Contoso" in err
    # disable and enable
    code, out, _ = nugat(data_dir, capsys, "user", "disable", "bob")
    assert code == 0 and "disabled bob" in out
    code, out, _ = nugat(data_dir, capsys, "user", "list", "--json")
    assert {u["name"]: u["disabled"] for u in json.loads(out)} == {"alice": False, "bob": True}
    core = Core(Settings(data_dir=data_dir))
    try:
        with pytest.raises(KeyRefused, match="bob's account was disabled"):
            core.accounts.verify_key(renewed["key"], "127.0.0.1")
    finally:
        core.close()
    assert nugat(data_dir, capsys, "user", "enable", "bob")[0] == 0
    code, out, _ = nugat(data_dir, capsys, "audit", "--json")
    actions = [e["action"] for e in json.loads(out)]
    for action in ("key.revoke", "key.regenerate", "user.delete", "account.disable", "account.enable"):
        assert action in actions
    deleted = next(e for e in json.loads(out) if e["action"] == "user.delete")
    assert deleted["account"] == "deleted user" and deleted["detail"]["name"] == "carol"


@pytest.mark.parametrize(
    "command", [["key", "create"], ["key", "edit"], ["policy", "create"], ["policy", "edit"]]
)
def test_scope_choices_and_help_name_every_scope(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one line per option
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = capsys.readouterr().out
    assert f"--scope {{{','.join(Scope)}}}" in shown
    assert all(f"{scope.value}: {scope.help}" in shown for scope in Scope)


def test_the_command_line_says_when_nothing_changed_and_refuses_what_makes_no_sense(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("alice", "bob", "carol"):
        assert (
            nugat(
                data_dir, capsys, "user", "create", name, "--email", f"{name}@example.test", "--no-password"
            )[0]
            == 0
        )
    assert nugat(data_dir, capsys, "org", "create", "Contoso", "--admin", "alice")[0] == 0
    code, out, _ = nugat(data_dir, capsys, "user", "enable", "carol")
    assert (code, out) == (0, "carol is not disabled\n")
    assert nugat(data_dir, capsys, "user", "disable", "bob")[1].startswith("disabled bob: its sessions ended")
    code, out, _ = nugat(data_dir, capsys, "user", "disable", "bob")
    assert (code, out) == (0, "bob is already disabled\n")
    # a disabled user joins no organization (the pages are refused by the same service)
    code, _, err = nugat(data_dir, capsys, "org", "add-member", "Contoso", "bob", "--role", "admin")
    assert (
        code == 1
        and "bob's account is disabled: a site admin must enable it before it can join Contoso" in err
    )
    code, out, _ = nugat(data_dir, capsys, "org", "list", "--json")
    assert [m["name"] for m in json.loads(out)[0]["members"]] == ["alice"]
    for limit in ("-5", "0", "x"):
        with pytest.raises(SystemExit) as exited:
            main(["audit", "--data-dir", str(data_dir), "--limit", limit])
        assert exited.value.code == 2
        assert "--limit" in capsys.readouterr().err
    assert main(["audit", "--data-dir", str(data_dir), "--limit", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    # enabling bob again: said, and it may then join
    assert nugat(data_dir, capsys, "user", "enable", "bob")[1].startswith("enabled bob")
    assert nugat(data_dir, capsys, "org", "add-member", "Contoso", "bob", "--role", "collaborator")[0] == 0
    code, out, _ = nugat(data_dir, capsys, "audit", "--json")
    actions = [e["action"] for e in json.loads(out)]
    assert actions.count("account.disable") == actions.count("account.enable") == 1
