"""Leaked keys revoked: reported to ``POST /api/v2/revoke`` (no authentication, the answer the same
whatever was sent), pasted by a site admin, or found inside a pushed package; each audited and its owner
mailed (a real SMTP server on the loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from nugat.keys import new_key, new_key_id
from support.smtp import MailBox
from web.helpers import MakeSite, Site, csrf_of, nupkg, page_text
from web.test_mail_flows import mail_settings


@pytest.fixture
def mailbox() -> Iterator[MailBox]:
    box = MailBox().start()
    yield box
    box.stop()


@pytest.fixture
def msite(make_site: MakeSite, mailbox: MailBox) -> Site:
    site = make_site(**mail_settings(mailbox))
    site.sign_in("alice")
    return site


def revocations(site: Site) -> list[dict[str, object]]:
    return [e.as_json() for e in site.core.audit.events(user="alice") if e.action == "key.revoke"]


def test_a_reported_key_is_revoked_and_the_answer_says_nothing(msite: Site, mailbox: MailBox) -> None:
    _, secret = msite.create_key(name="leaky")
    assert msite.push(secret, nupkg("Leak.Before", "1.0.0")) == 201
    unknown = new_key(new_key_id())  # well formed, but no key of this server
    report = [
        {"token": secret, "type": "nugat_api_key", "url": "https://github.com/o/r/blob/main/ci.yml"},
        {"token": unknown, "type": "nugat_api_key", "url": "https://example.test/x"},
        "not a key at all",
    ]
    answer = msite.client.post("/api/v2/revoke", content=json.dumps(report))
    nothing = msite.client.post("/api/v2/revoke", content=json.dumps([unknown, "a", "b"]))
    assert answer.status_code == nothing.status_code == 202
    assert answer.content == nothing.content == b'{"received":3}'
    assert msite.push(secret, nupkg("Leak.After", "1.0.0")) == 403
    assert [k.state for k in msite.core.accounts.list_keys("alice")] == ["revoked"]  # listed, dead for good
    events = revocations(msite)
    assert len(events) == 1
    detail = json.dumps(events[0])
    assert "https://github.com/o/r/blob/main/ci.yml" in detail and "reported as leaked" in detail
    mail = mailbox.to("alice@example.test", 'API key "leaky" revoked')
    assert "reported as leaked" in mail.text and secret not in mail.text + mail.html
    again = msite.client.post("/api/v2/revoke", content=json.dumps([secret]))
    assert again.status_code == 202 and len(revocations(msite)) == 1


def test_reports_are_bounded_and_throttled(msite: Site) -> None:
    assert msite.client.post("/api/v2/revoke", content=b"{nope").status_code == 400
    assert msite.client.post("/api/v2/revoke", content=b'"one string"').status_code == 400
    big = msite.client.post("/api/v2/revoke", content=b"[" + b'"x",' * 300_000 + b'"x"]')
    assert big.status_code == 413
    statuses = [msite.client.post("/api/v2/revoke", content=b"[]").status_code for _ in range(30)]
    assert 429 in statuses and statuses[-1] == 429
    assert "Retry-After" in msite.client.post("/api/v2/revoke", content=b"[]").headers


def test_a_site_admin_pastes_leaked_keys(msite: Site, mailbox: MailBox) -> None:
    _, first = msite.create_key(name="one")
    _, second = msite.create_key(name="two")
    _, kept = msite.create_key(name="kept")
    page = msite.get("/admin/revoke")
    assert page.status_code == 403  # alice is no site admin
    root = msite.browser("root", admin=True)
    form = root.get("/admin/revoke")
    assert form.status_code == 200
    text = f"log line {first}\nanother: token={second};\n{new_key(new_key_id())}"
    done = root.client.post(
        "/admin/revoke", data={"csrf": csrf_of(form.text), "keys": text, "source": "a pastebin"}
    )
    assert "2 keys revoked, of 3 key-shaped strings found" in page_text(done.text)
    states = {k.name: k.state for k in msite.core.accounts.list_keys("alice")}
    assert states["one"] == states["two"] == "revoked" and states["kept"] != "revoked"
    assert mailbox.to("alice@example.test", 'API key "one" revoked')
    assert mailbox.to("alice@example.test", 'API key "two" revoked')
    assert msite.push(kept, nupkg("Still.Works", "1.0.0")) == 201


def test_a_push_holding_a_key_is_refused_and_the_key_revoked(msite: Site, mailbox: MailBox) -> None:
    _, pusher = msite.create_key(name="pusher")
    bob = msite.browser("bob")
    _, bobs = bob.create_key(name="bob's", owner="bob")
    package = nupkg("Has.Secret", "1.0.0", files={"content/appsettings.json": f'{{"NuGetKey": "{bobs}"}}'})
    files = {"package": ("p.nupkg", package, "application/octet-stream")}
    refused = msite.client.put("/api/v2/package/", files=files, headers={"X-NuGet-ApiKey": pusher})
    assert refused.status_code == 400
    assert "The package contains an API key" in refused.text
    assert "The package contains an API key" in refused.headers["X-NuGet-Warning"]
    assert [k.state for k in bob.core.accounts.list_keys("bob")] == ["revoked"]
    told = mailbox.to("bob@example.test", 'API key "bob\'s" revoked')
    assert "inside a package" in told.text
    # Audited as the pusher's doing, from where the push came (not as the command line's).
    [event] = [e for e in msite.core.audit.events(limit=100) if e.action == "key.revoke"]
    assert (event.actor, event.address) == ("alice", "testclient")
    assert msite.push(pusher, nupkg("Has.Secret", "1.0.0")) == 201  # without it, the push goes through
    # A key-shaped string that is no key of this server is no reason to refuse.
    decoy = nupkg("Has.Decoy", "1.0.0", files={"a.txt": new_key(new_key_id())})
    assert msite.push(pusher, decoy) == 201
