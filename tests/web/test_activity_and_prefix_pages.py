"""The Activity page (a user's own audit events; site admins see all, filtered) and the site admins'
Reserved prefixes page."""

from __future__ import annotations

import re
from html import unescape

from web.helpers import Site, csrf_of, nupkg, page_text


def rows(html: str) -> list[str]:
    """The Activity table's rows, as text."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return [page_text(row) for row in body.split("</tr>") if row.strip()]


def test_activity_shows_a_user_its_own_events(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    key = alice.core.accounts.list_keys("alice")[0]
    assert alice.push(secret, nupkg("Act.Lib", "1.0.0")) == 201
    alice.submit("/account/packages", "/account/packages/Act.Lib/1.0.0/unlist", {})
    bob = alice.browser("bob")
    _, bobs = bob.create_key(name="bob ci", owner="bob")
    assert bob.push(bobs, nupkg("Bob.Lib", "1.0.0")) == 201

    html = alice.get("/account/activity").text
    mine = rows(html)
    assert [r.split()[2] for r in mine] == ["package.unlist", "package.push", "key.create"]
    unlist, push, create = mine
    assert "alice alice Act.Lib 1.0.0 testclient" in unlist
    assert f"alice alice Act.Lib 1.0.0 {key.id}" in push
    assert f"alice alice {key.id} testclient name: ci; scopes: push; globs: *" in create
    assert "Bob.Lib" not in html and "bob ci" not in html
    assert secret.split("_", 2)[2] not in html
    assert "What you did" in page_text(html)
    assert [r.split()[2] for r in rows(alice.get("/account/activity?package=act.lib").text)] == [
        "package.unlist",
        "package.push",
    ]
    assert rows(alice.get("/account/activity?package=Bob.Lib").text) == []  # bob's, not visible to alice
    assert "No events match." in alice.get("/account/activity?package=Bob.Lib").text


def test_site_admins_see_every_event_and_filter_by_user_or_package(alice: Site) -> None:
    _, secret = alice.create_key(name="ci")
    assert alice.push(secret, nupkg("Act.Lib", "1.0.0")) == 201
    bob = alice.browser("bob")
    _, bobs = bob.create_key(name="bob ci", owner="bob")
    assert bob.push(bobs, nupkg("Bob.Lib", "1.0.0")) == 201
    root = alice.browser("root", admin=True)

    everything = rows(root.get("/account/activity").text)
    assert len(everything) == 4 and "Every event on this server" in root.get("/account/activity").text
    by_bob = rows(root.get("/account/activity?user=BOB").text)
    assert [r.split()[2] for r in by_bob] == ["package.push", "key.create"]
    assert all(" bob bob " in r for r in by_bob)
    assert [r.split()[2] for r in rows(root.get("/account/activity?package=Act.Lib").text)] == [
        "package.push"
    ]
    assert 'value="BOB"' in root.get("/account/activity?user=BOB").text  # the filter is kept
    unknown = root.get("/account/activity?user=nobody")
    assert unknown.status_code == 404 and "No account named 'nobody'" in unescape(unknown.text)


def test_only_site_admins_reserve_and_release_prefixes(alice: Site) -> None:
    root = alice.browser("root", admin=True)
    alice.core.orgs.create("Contoso", "alice")
    bob = alice.browser("bob")
    assert 'href="/admin/prefixes"' not in alice.get("/").text
    assert 'href="/admin/prefixes"' in root.get("/").text
    refused = alice.get("/admin/prefixes")
    assert (
        refused.status_code == 403 and "Only site admins can reserve or release id prefixes" in refused.text
    )
    token = csrf_of(alice.get("/account").text)
    posted = alice.client.post(
        "/admin/prefixes", data={"csrf": token, "prefix": "Contoso.*", "owners": "alice"}
    )
    assert posted.status_code == 403
    assert alice.core.prefixes.all() == []

    reserved = root.submit(
        "/admin/prefixes", "/admin/prefixes", {"prefix": "Contoso.", "owners": "contoso, bob"}
    )
    assert reserved.status_code == 303
    text = page_text(root.get(reserved.headers["location"]).text)
    assert "Prefix Contoso.* reserved for contoso, bob." in text
    assert "Contoso.* bob Release Contoso.* for bob Contoso.* Contoso Release Contoso.* for Contoso" in text
    assert [(p.prefix, p.owners) for p in alice.core.prefixes.all()] == [("Contoso.*", ["bob", "Contoso"])]
    _, bobs = bob.create_key(name="bob ci", owner="bob")
    assert bob.push(bobs, nupkg("Contoso.Bob", "1.0.0")) == 201  # bob holds the prefix
    _, alices = alice.create_key(name="alice ci")
    assert alice.push(alices, nupkg("Contoso.Alice", "1.0.0")) == 409  # alice does not (her org does)

    bad = root.submit("/admin/prefixes", "/admin/prefixes", {"prefix": "no spaces *", "owners": "bob"})
    assert bad.status_code == 400 and "Invalid prefix" in unescape(bad.text)
    assert 'value="no spaces *"' in bad.text
    nobody = root.submit("/admin/prefixes", "/admin/prefixes", {"prefix": "Fab.*", "owners": "nobody"})
    assert nobody.status_code == 404 and "No account named 'nobody'" in unescape(nobody.text)
    none = root.submit("/admin/prefixes", "/admin/prefixes", {"prefix": "Fab.*", "owners": " "})
    assert none.status_code == 400 and "Name at least one owner" in none.text
    twice = root.submit("/admin/prefixes", "/admin/prefixes", {"prefix": "contoso.*", "owners": "bob"})
    assert twice.status_code == 409

    data = {"prefix": "Contoso.*", "owner": "bob"}
    assert alice.client.post("/admin/prefixes/release", data={"csrf": token, **data}).status_code == 403
    released = root.submit("/admin/prefixes", "/admin/prefixes/release", data, follow=True)
    assert "Reservation of Contoso.* for bob released." in released.text
    assert [(p.prefix, p.owners) for p in alice.core.prefixes.all()] == [("Contoso.*", ["Contoso"])]
    again = root.submit("/admin/prefixes", "/admin/prefixes/release", data)
    assert again.status_code == 404
    events = [(e.action, e.actor) for e in alice.core.audit.events() if e.action.startswith("prefix")]
    assert events == [("prefix.release", "root"), ("prefix.reserve", "root"), ("prefix.reserve", "root")]


def test_packages_of_a_prefix_s_holders_show_as_verified_in_search_and_on_their_page(alice: Site) -> None:
    """The Reserved prefixes page says its holders' packages "show as verified": search and registration
    said so (``verified``), the pages did not. Now both the results and the package's page mark them."""
    core = alice.core
    core.orgs.create("Contoso", "alice")
    _, org_key = core.accounts.create_key("alice", "org", ["push"], ["*"], [], 30, "Contoso")
    _, own_key = core.accounts.create_key("alice", "own", ["push"], ["*"], [], 30)
    assert alice.push(org_key, nupkg("Contoso.Core", "1.0.0")) == 201
    # pushed before the reservation by alice herself, not by its holder: not verified
    assert alice.push(own_key, nupkg("Contoso.Before", "1.0.0")) == 201
    core.prefixes.reserve("Contoso.*", ["Contoso"])

    def marked(html: str) -> list[str]:
        """The ids of the results marked verified."""
        return re.findall(r'href="/packages/([\w.]+)">[^<]*</a>\s*<span class="version">[^<]*</span>\s*'
                          r'<span class="badge verified"', html)  # fmt: skip

    assert marked(alice.get("/packages?q=contoso").text) == ["Contoso.Core"]
    assert "Verified owner" in page_text(alice.get("/packages/Contoso.Core").text)
    assert "Verified owner" not in page_text(alice.get("/packages/Contoso.Before").text)
    core.prefixes.release("Contoso.*")
    assert marked(alice.get("/packages?q=contoso").text) == []
    assert "Verified owner" not in page_text(alice.get("/packages/Contoso.Core").text)
