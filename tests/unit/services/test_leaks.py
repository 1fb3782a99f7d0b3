"""``services.leaks``: key-shaped strings found in text and in packages (bounded, across read chunks, in entry
names), and every valid key among them revoked for good (audited with its reason, where it was found and who
reported it; its creator mailed, the secret never in the mail); what is no key of this server is ignored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nugat import keys
from nugat.nuspec import CONTENT_CHUNK as CHUNK
from nugat.nuspec import InvalidPackage
from nugat.services.leaks import IN_PACKAGE, MAX_CANDIDATES, find_keys, scan_package
from support.services import ADDRESS, Clock, Site, refused
from support.zips import package, spoil, zip_bytes

IN_PUSH = "It was found inside a package pushed to this server, where anyone could read it."


def stranger() -> str:
    """A well-formed key that is no key of this server."""
    return keys.new_key(keys.new_key_id())


def key_id(secret: str) -> str:
    parsed = keys.parse_key(secret)
    assert parsed is not None
    return parsed.key_id


def nupkg(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "found.nupkg"
    path.write_bytes(data)
    return path


@pytest.fixture
def users(mailing: Site) -> Site:
    mailing.users("alice", "bob")
    return mailing


# Finding ----------------------------------------------------------------------------------------------------


def test_find_keys_in_order_once_each() -> None:
    first, second = stranger(), stranger()
    text = f"token={first};\n  {second} and again {first}\nnugat_{'A' * 16}_{'b' * 50} (no key: upper case)"
    assert find_keys(text) == [first, second]
    assert find_keys("nothing here") == []
    assert find_keys(first[:-1]) == []  # cut short


def test_find_keys_is_bounded() -> None:
    many = [stranger() for _ in range(MAX_CANDIDATES + 1)]
    assert find_keys(" ".join(many)) == many[:MAX_CANDIDATES]


def test_scan_package_finds_keys_in_contents_and_entry_names(tmp_path: Path) -> None:
    in_content, in_name, in_nuspec = stranger(), stranger(), stranger()
    data = package(
        "Has.Keys",
        files={
            "content/appsettings.json": json.dumps({"key": in_content}).encode(),
            f"tools/{in_name}.txt": b"",
        },
        description=f"uses {in_nuspec}",
    )
    assert sorted(scan_package(nupkg(tmp_path, data))) == sorted([in_content, in_name, in_nuspec])
    assert scan_package(nupkg(tmp_path, package("Clean"))) == []


def test_a_key_across_two_read_chunks_is_found(tmp_path: Path) -> None:
    secret = stranger()
    big = b"x" * (CHUNK - 20) + secret.encode() + b"y" * 100  # the first chunk ends inside the key
    assert scan_package(nupkg(tmp_path, package("Big", files={"content/big.bin": big}))) == [secret]


def test_scan_package_reads_at_most_its_budget(tmp_path: Path) -> None:
    late, named = stranger(), stranger()
    data = zip_bytes([("a.txt", b"a" * 100), ("b.txt", b"b" * 50 + late.encode()), (f"{named}.txt", b"")])
    path = nupkg(tmp_path, data)
    exact = 100 + 50 + len(late)
    assert scan_package(path, budget=exact) == [late, named]
    assert scan_package(path, budget=exact - 1) == [named]  # names are read whatever the budget
    assert scan_package(path, budget=0) == [named]


def test_a_broken_package_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidPackage, match=r"^The file is not a valid zip archive"):
        scan_package(nupkg(tmp_path, b"PK\x03\x04 not a zip " + stranger().encode()))
    corrupt = spoil(package("Broken", files={"lib/a.dll": bytes(range(256)) * 64}), "lib/a.dll")
    with pytest.raises(InvalidPackage, match=r"^Entry 'lib/a\.dll' is corrupt"):
        scan_package(nupkg(tmp_path, corrupt))


# Revoking ---------------------------------------------------------------------------------------------------


def test_every_valid_key_among_the_candidates_is_revoked(users: Site) -> None:
    alices, bobs, kept = users.secret("alice"), users.secret("bob"), users.secret("alice")
    candidates = [alices, "not a key", stranger(), bobs, alices, f"  {kept[:-1]}x"]
    reason = "A site administrator revoked it as leaked."
    assert users.core.leaks.revoke(candidates, reason, source="a pastebin", by="root") == 2
    for secret in (alices, bobs):
        with refused(
            403, re.escape(f"API key {key_id(secret)} was revoked on 2026-03-01T12:00:00Z: {reason}")
        ):
            users.core.accounts.verify_key(secret, ADDRESS)
    users.core.accounts.verify_key(kept, ADDRESS)
    events = users.events("key.revoke")
    assert sorted(e.key_id for e in events if e.key_id) == sorted([key_id(alices), key_id(bobs)])
    for event in events:
        assert (event.detail["reason"], event.detail["source"], event.detail["by"]) == (
            reason,
            "a pastebin",
            "root",
        )
    [alice_mail] = [m for m in users.mails("alice@example.test") if "revoked" in m.subject]
    [bob_mail] = [m for m in users.mails("bob@example.test") if "revoked" in m.subject]
    assert alice_mail.subject == 'API key "test key 1" revoked' and reason in alice_mail.text_body
    assert bob_mail.subject == 'API key "test key 2" revoked'
    for text in [m.text_body + m.html_body for m in users.mails()] + [
        json.dumps(e.as_json()) for e in events
    ]:
        assert alices not in text and bobs not in text


def test_a_key_revoked_again_stays_as_it_was_and_is_not_mailed_again(users: Site) -> None:
    secret = users.secret("alice")
    users.core.leaks.revoke([secret], "first report", source="https://example.test/1")
    mails = len(users.mails())
    users.core.leaks.revoke([secret], "second report", source="https://example.test/2")
    assert len(users.mails()) == mails
    [event] = users.events("key.revoke")
    assert event.detail["source"] == "https://example.test/1"
    assert users.core.accounts.list_keys("alice")[0].revoked_reason == "first report"


def test_an_expired_key_is_revoked_too(users: Site, clock: Clock) -> None:
    secret = users.secret("alice", days=1)
    clock.advance(days=2)
    assert users.core.leaks.revoke([secret], "leaked") == 1
    assert users.core.accounts.list_keys("alice")[0].state == "revoked"


def test_a_key_id_without_its_secret_revokes_nothing(users: Site) -> None:
    secret = users.secret("alice")
    forged = keys.new_key(key_id(secret))  # the id is printed in mails and logs; the secret is not
    assert users.core.leaks.revoke([forged], "a stranger's report") == 0
    users.core.accounts.verify_key(secret, ADDRESS)
    assert users.events("key.revoke") == []


def test_a_regenerated_away_secret_revokes_nothing(users: Site) -> None:
    view, old = users.core.accounts.create_key("alice", "ci", ["push"], ["*"], [], None)
    _, new = users.core.accounts.regenerate_key("alice", view.id)
    assert users.core.leaks.revoke([old], "an old secret leaked") == 0
    users.core.accounts.verify_key(new, ADDRESS)


# Packages ---------------------------------------------------------------------------------------------------


def test_a_package_holding_a_valid_key_is_refused_and_the_key_revoked(users: Site, tmp_path: Path) -> None:
    bobs = users.secret("bob")
    data = package("Has.Secret", files={"content/appsettings.json": f'{{"NuGetKey": "{bobs}"}}'.encode()})
    hint = f"a package pushed from {ADDRESS}"
    with refused(400, f"^{IN_PACKAGE}: it was revoked, and its owner was told"):
        users.core.leaks.check_package(nupkg(tmp_path, data), hint)
    with refused(403, "inside a package pushed to this server"):
        users.core.accounts.verify_key(bobs, ADDRESS)
    [event] = users.events("key.revoke")
    assert (event.key_id, event.detail["reason"], event.detail["source"]) == (key_id(bobs), IN_PUSH, hint)
    [told] = [m for m in users.mails("bob@example.test") if "revoked" in m.subject]
    assert IN_PUSH in told.text_body and bobs not in told.text_body + told.html_body


def test_a_package_with_a_corrupt_entry_is_refused(users: Site, tmp_path: Path) -> None:
    corrupt = spoil(package("Broken", files={"lib/a.dll": bytes(range(256)) * 64}), "lib/a.dll", crc=True)
    with refused(400, r"^Entry 'lib/a.dll' is corrupt \(Bad CRC-32"):
        users.core.leaks.check_package(nupkg(tmp_path, corrupt), "a push")


def test_a_package_without_a_valid_key_passes(users: Site, tmp_path: Path) -> None:
    kept = users.secret("alice")
    decoy = package(
        "Has.Decoy", files={"a.txt": stranger().encode(), "b.txt": keys.new_key(key_id(kept)).encode()}
    )
    users.core.leaks.check_package(nupkg(tmp_path, decoy), "a push")
    users.core.leaks.check_package(nupkg(tmp_path, package("Clean")), "a push")
    users.core.accounts.verify_key(kept, ADDRESS)
    assert users.events("key.revoke") == []
