"""A read key is cut off at its next read when it is deleted or revoked, when its user is disabled or leaves
the private organization whose packages it read, through this process's pages: the read path keeps each
key's facts a second (``services.readers``), and forgets them as soon as a change made here has committed.
No sleep in these tests: each read follows the change at once."""

from __future__ import annotations

import httpx

from web.helpers import PASSWORD, MakeSite, Site, nupkg

PRIVATE = "/v3/flatcontainer/contoso.secret/index.json"


def _read(site: Site, key: str, path: str = PRIVATE) -> httpx.Response:
    return httpx.Client.get(site.client, path, auth=("any", key), cookies={})


def _key_id(key: str) -> str:
    return key.split("_")[1]


def _private_org(make_site: MakeSite) -> Site:
    """A users site: alice admin of the private organization contoso (Contoso.Secret), bob its member."""
    site = make_site(read_access="users")
    core = site.core
    core.accounts.create_user("bob", "bob@example.test", PASSWORD)
    core.orgs.create("contoso", "alice")
    core.orgs.add_member("contoso", "bob", "collaborator", by="alice")
    _, push = core.accounts.create_key("alice", "push", ["push"], ["*"], [], 30, "contoso")
    assert site.push(push, nupkg("Contoso.Secret", "1.0.0")) == 201
    core.orgs.set_private("contoso", True)
    site.sign_in("alice")
    return site


def test_a_deleted_read_key_is_refused_at_its_next_read(make_site: MakeSite) -> None:
    site = _private_org(make_site)
    _, key = site.core.accounts.create_key("alice", "restore", ["read"], ["*"], [], 30)
    assert _read(site, key).status_code == 200
    deleted = site.submit(
        f"/account/apikeys/{_key_id(key)}/delete", f"/account/apikeys/{_key_id(key)}/delete", {}
    )
    assert deleted.status_code == 303, deleted.text
    refused = _read(site, key)
    assert refused.status_code == 401
    assert "does not exist" in refused.headers["x-nuget-warning"]


def test_a_removed_member_reads_the_private_package_no_more(make_site: MakeSite) -> None:
    site = _private_org(make_site)
    _, key = site.core.accounts.create_key("bob", "restore", ["read"], ["*"], [], 30)
    assert _read(site, key).status_code == 200
    removed = site.submit("/orgs/contoso", "/orgs/contoso/members/bob/remove", {})
    assert removed.status_code == 303, removed.text
    assert _read(site, key).status_code == 404  # as an id never pushed
    assert _read(site, key, "/v3/search?q=contoso").json()["totalHits"] == 0


def test_a_disabled_users_read_key_is_refused_at_its_next_read(make_site: MakeSite) -> None:
    site = make_site(read_access="users")
    site.core.accounts.create_user("root", "root@example.test", PASSWORD, admin=True)
    _, key = site.core.accounts.create_key("alice", "restore", ["read"], ["*"], [], 30)
    assert _read(site, key, "/v3/search").status_code == 200
    admin = site.browser("root")
    disabled = admin.submit("/admin/users/alice/disable", "/admin/users/alice/disable", {"reason": "left"})
    assert disabled.status_code == 303, disabled.text
    assert _read(site, key, "/v3/search").status_code == 401
