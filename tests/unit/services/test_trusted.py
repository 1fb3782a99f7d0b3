"""``services.trusted`` without a server: policies, minting from a loopback issuer's tokens, replay, first-use
binding and its 7 days, rights re-checked at mint time, keys killed by edits, trusted-only packages, and
what each step leaves in the audit log. (The HTTP contract: ``tests/functional/test_trusted_publishing``.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from nugat.services.trusted import PolicySettings
from support.oidc_issuer import LoopbackIssuer, github_claims, running_issuer
from support.services import ADDRESS, MAILING, Clock, Site, refused

AUD = "https://nuget.test"
RELEASE = PolicySettings(
    criteria={"owner": "contoso", "repository": "lib", "workflow": "release.yml"},
    scopes=["push"],
    globs=["*"],
)


@pytest.fixture(scope="module")
def issuer() -> Iterator[LoopbackIssuer]:
    with running_issuer() as found:
        yield found


@pytest.fixture
def tp(make_site: Callable[..., Site], issuer: LoopbackIssuer) -> Site:
    site = make_site(oidc_issuers=f"github={issuer.url}", oidc_audience=AUD)
    site.users("alice", "bob")
    return site


def mint(site: Site, issuer: LoopbackIssuer, user: str = "alice", **claims: Any) -> str:
    return site.core.trusted.mint(user, issuer.token(github_claims(**claims)), ADDRESS).key


def test_a_policy_mints_a_key_its_owner_pushes_with(tp: Site, issuer: LoopbackIssuer, clock: Clock) -> None:
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE, ADDRESS)
    assert (policy.name, policy.bound, policy.key_minutes) == ("contoso/lib release.yml", False, 15)
    minted = tp.core.trusted.mint("alice", issuer.token(github_claims()), ADDRESS)
    assert minted.expires == clock.now + timedelta(minutes=15)
    grant, _ = tp.core.accounts.verify_key(minted.key, ADDRESS)
    assert grant.trusted and grant.owner_name == "alice"
    assert tp.push(grant, "Contoso.Lib").package_id == "Contoso.Lib"
    [push] = tp.events("package.push")
    assert push.detail["credential"].endswith("contoso/lib .github/workflows/release.yml run 777")
    assert [e.action for e in tp.events() if e.action.startswith("trusted.")] == [
        "trusted.policy_create",
        "trusted.policy_bind",
        "trusted.mint",
    ]


def test_a_token_buys_one_key_even_after_a_restart(tp: Site, issuer: LoopbackIssuer) -> None:
    tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    token = issuer.token(github_claims())
    tp.core.trusted.mint("alice", token)
    with refused(401, "already exchanged"):
        tp.restart().core.trusted.mint("alice", token)


def test_seven_days_to_first_use_on_the_stopped_clock(tp: Site, issuer: LoopbackIssuer, clock: Clock) -> None:
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    clock.advance(days=7, seconds=1)
    with refused(401, "not used within 7 days"):
        mint(tp, issuer)
    tp.core.trusted.edit_policy("alice", policy.id, RELEASE)
    clock.advance(days=6)
    mint(tp, issuer)
    clock.advance(days=30)  # bound: it no longer expires
    mint(tp, issuer)


def test_changing_the_repository_unbinds_the_policy(tp: Site, issuer: LoopbackIssuer) -> None:
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    mint(tp, issuer)
    with refused(401, "deleted and made again"):
        mint(tp, issuer, repository_id="9")
    same_repo = PolicySettings(
        **{**vars(RELEASE), "criteria": {**RELEASE.criteria, "environment": "release"}}
    )
    assert tp.core.trusted.edit_policy("alice", policy.id, same_repo).bound
    moved = PolicySettings(**{**vars(RELEASE), "criteria": {**RELEASE.criteria, "repository": "lib2"}})
    assert not tp.core.trusted.edit_policy("alice", policy.id, moved).bound
    lib2 = "contoso/lib2/.github/workflows/release.yml@refs/heads/main"
    mint(tp, issuer, repository="contoso/lib2", repository_id="9", job_workflow_ref=lib2)


def test_an_org_policy_needs_its_creator_to_stay_admin(tp: Site, issuer: LoopbackIssuer) -> None:
    tp.core.orgs.create("Contoso", "alice")
    tp.core.orgs.add_member("Contoso", "bob", "collaborator")
    with refused(403, "only Contoso itself or an administrator"):
        tp.core.trusted.create_policy("bob", "Contoso", "github", None, RELEASE)
    tp.core.trusted.create_policy("alice", "Contoso", "github", None, RELEASE)
    grant, _ = tp.core.accounts.verify_key(mint(tp, issuer), ADDRESS)
    assert grant.owner_name == "Contoso"
    tp.core.orgs.change_role("Contoso", "bob", "admin")
    tp.core.orgs.change_role("Contoso", "alice", "collaborator")
    with refused(403, "alice is no longer an administrator of Contoso"):
        mint(tp, issuer)


def test_disabled_users_and_orgs_mint_no_key(tp: Site, issuer: LoopbackIssuer) -> None:
    """Issue 14: a policy whose creator or owner (a user, or an organization) is disabled mints nothing."""
    tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    minted = mint(tp, issuer)
    tp.core.accounts.disable_account("alice")
    with refused(403, "The user alice, who made policy .*, is disabled"):
        mint(tp, issuer)
    with refused(403, "alice's account was disabled"):  # the key it minted before is revoked too
        tp.core.accounts.verify_key(minted, ADDRESS)
    tp.core.accounts.enable_account("alice")
    mint(tp, issuer)
    tp.core.orgs.create("Contoso", "bob")
    tp.core.trusted.create_policy("bob", "Contoso", "github", None, RELEASE)
    org_key = mint(tp, issuer, "Contoso")
    tp.core.accounts.disable_account("Contoso")
    with refused(403, "The organization Contoso is disabled"):
        mint(tp, issuer, "Contoso")
    with refused(403, "acts for the organization Contoso, which is disabled"):
        tp.core.accounts.verify_key(org_key, ADDRESS)
    refusals = [e.detail.get("reason", "") for e in tp.events("trusted.refused")]
    assert any("is disabled" in r for r in refusals), refusals


def test_edits_and_deletes_kill_the_keys_a_policy_minted(tp: Site, issuer: LoopbackIssuer) -> None:
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    key = mint(tp, issuer)
    assert len(tp.core.trusted.policy("alice", policy.id).live_keys) == 1
    tp.core.trusted.edit_policy("alice", policy.id, RELEASE)
    with pytest.raises(Exception, match=r"invalid, revoked or unknown|does not exist|deleted"):
        tp.core.accounts.verify_key(key, ADDRESS)
    key = mint(tp, issuer)
    tp.core.trusted.delete_policy("alice", policy.id)
    with pytest.raises(Exception, match=r"invalid, revoked or unknown|does not exist|deleted"):
        tp.core.accounts.verify_key(key, ADDRESS)
    assert tp.core.trusted.policies("alice") == []


def test_others_cannot_see_edit_or_delete_a_policy(tp: Site) -> None:
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    assert tp.core.trusted.policies("bob") == []
    with refused(404, "no trusted publishing policy"):
        tp.core.trusted.edit_policy("bob", policy.id, RELEASE)
    with refused(404, "no trusted publishing policy"):
        tp.core.trusted.delete_policy("bob", policy.id)


def test_trusted_only_refuses_long_lived_keys_of_owners(tp: Site, issuer: LoopbackIssuer) -> None:
    tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    long_lived = tp.key("alice", "push")
    tp.push(long_lived, "Contoso.Lib")
    tp.core.trusted.set_trusted_only("alice", "Contoso.Lib", True, ADDRESS)
    with refused(403, "accepts only trusted publishing"):
        tp.push(long_lived, "Contoso.Lib", "1.1.0")
    minted, _ = tp.core.accounts.verify_key(mint(tp, issuer), ADDRESS)
    tp.push(minted, "Contoso.Lib", "1.1.0")
    assert tp.versions("Contoso.Lib") == {"1.0.0": True, "1.1.0": True}
    [switch] = tp.events("package.trusted_only")
    assert (switch.actor, switch.package_id, switch.detail) == (
        "alice",
        "Contoso.Lib",
        {"trusted_only": True},
    )


def test_without_issuers_or_audience_nothing_is_enabled(
    make_site: Callable[..., Site], issuer: LoopbackIssuer
) -> None:
    for settings in ({}, {"oidc_issuers": f"github={issuer.url}"}):
        site = make_site(**settings)
        site.user("alice")
        assert not site.core.trusted.enabled
        with refused(404, "not enabled"):
            site.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    assert make_site(
        oidc_issuers=f"github={issuer.url}", public_url="https://nuget.example"
    ).core.trusted.enabled


def _set(site: Site, name: str, **values: Any) -> None:
    """Change an account's columns as its own pages would (two-factor on or off, email confirmed)."""
    from sqlalchemy import update

    from nugat.db.models import Account

    with site.core.db.session() as s:
        s.execute(update(Account).where(Account.name == name).values(**values))


def test_a_site_requiring_two_factor_refuses_policies_and_mints_to_users_without_it(
    make_site: Callable[..., Site], issuer: LoopbackIssuer, clock: Clock
) -> None:
    """Audit 1c: with NUGAT_REQUIRE_2FA, a user without two-factor gets no key through a policy either."""
    site = make_site(oidc_issuers=f"github={issuer.url}", oidc_audience=AUD, require_2fa=True)
    site.users("alice")
    with refused(403, "This site requires two-factor sign-in to create or regenerate API keys"):
        site.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    _set(site, "alice", totp_enabled_at=clock.now)
    policy = site.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    mint(site, issuer)
    _set(site, "alice", totp_enabled_at=None)  # turned off since: the policy mints nothing
    with refused(403, "alice, who made policy .*, may not be given API keys now: This site requires two"):
        mint(site, issuer)
    assert "This site requires two-factor" in site.events("trusted.refused")[-1].detail["reason"]
    with refused(403, "This site requires two-factor sign-in"):
        site.core.trusted.edit_policy("alice", policy.id, RELEASE)


def test_an_org_requiring_two_factor_refuses_its_policies_and_mints_to_members_without_it(
    tp: Site, issuer: LoopbackIssuer, clock: Clock
) -> None:
    """Audit 1b: the org's rule holds for policies as for `key create --owner Contoso`."""
    tp.core.orgs.create("Contoso", "alice")
    tp.core.trusted.create_policy("alice", "Contoso", "github", None, RELEASE)  # before the rule
    tp.core.orgs.set_require_2fa("Contoso", True)
    message = "Contoso requires two-factor sign-in of its members to create or regenerate API keys"
    with refused(403, message):
        tp.core.trusted.create_policy("alice", "Contoso", "github", None, RELEASE)
    with refused(403, f"alice, who made policy .*, may not be given API keys now: {message}"):
        mint(tp, issuer, "Contoso")
    tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)  # its own: not the org's
    _set(tp, "alice", totp_enabled_at=clock.now)
    grant, _ = tp.core.accounts.verify_key(mint(tp, issuer, "Contoso"), ADDRESS)
    assert grant.owner_name == "Contoso"
    tp.core.trusted.create_policy("alice", "Contoso", "github", None, RELEASE)


def test_an_unconfirmed_account_gets_the_keys_message(tp: Site) -> None:
    _set(tp, "alice", email_confirmed=False)
    with refused(
        403, r"Confirm your email address \(alice@example.test\) before creating API keys or pushing"
    ):
        tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)


def test_an_org_policy_leaves_the_hands_of_a_creator_who_left(tp: Site, issuer: LoopbackIssuer) -> None:
    """Audit 2: once out of the org (or only a collaborator), its creator no longer sees, edits or
    deletes the org's policy; the org's admins do."""
    tp.core.orgs.create("Contoso", "alice")
    tp.core.orgs.add_member("Contoso", "bob", "admin")
    policy = tp.core.trusted.create_policy("alice", "Contoso", "github", None, RELEASE)
    assert [p.id for p in tp.core.trusted.policies("bob")] == [policy.id]
    tp.core.orgs.change_role("Contoso", "alice", "collaborator")
    assert tp.core.trusted.policies("alice") == []
    tp.core.orgs.remove_member("Contoso", "alice")
    assert tp.core.trusted.policies("alice") == []
    with refused(404, "no trusted publishing policy"):
        tp.core.trusted.policy("alice", policy.id)
    with refused(404, "no trusted publishing policy"):
        tp.core.trusted.edit_policy("alice", policy.id, RELEASE)
    with refused(404, "no trusted publishing policy"):
        tp.core.trusted.delete_policy("alice", policy.id)
    assert tp.core.trusted.policy("bob", policy.id).creator == "alice"
    tp.core.trusted.delete_policy("bob", policy.id)


def test_revoked_minted_keys_are_not_live(tp: Site, issuer: LoopbackIssuer) -> None:
    """Audit 3: ``live_keys`` (``nugat policy list --json``) leaves out revoked keys."""
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    mint(tp, issuer)
    assert len(tp.core.trusted.policy("alice", policy.id).live_keys) == 1
    tp.core.accounts.disable_account("alice")  # revokes every key alice made, minted ones too
    tp.core.accounts.enable_account("alice")
    assert tp.core.trusted.policy("alice", policy.id).live_keys == []
    assert tp.core.trusted.policies()[0].as_json()["live_keys"] == []


@pytest.mark.parametrize("scopes", [["read"], ["push", "read"], ["READ"]])
def test_a_policy_has_only_publishing_scopes(tp: Site, scopes: list[str]) -> None:
    """Audit 4: push, push-version and unlist; never read (a CLI `--scope read` or a crafted form)."""
    settings = PolicySettings(**{**vars(RELEASE), "scopes": scopes})
    message = (
        "A trusted publishing policy cannot have the scope 'read': .* choose push, push-version or unlist"
    )
    with refused(400, message):
        tp.core.trusted.create_policy("alice", "alice", "github", None, settings)
    policy = tp.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    with refused(400, message):
        tp.core.trusted.edit_policy("alice", policy.id, settings)
    with refused(400, "Choose at least one scope: push, push-version or unlist"):
        tp.core.trusted.edit_policy("alice", policy.id, PolicySettings(**{**vars(RELEASE), "scopes": []}))
    ok = PolicySettings(**{**vars(RELEASE), "scopes": ["push-version", "unlist"]})
    assert tp.core.trusted.edit_policy("alice", policy.id, ok).scopes == ["push-version", "unlist"]


def test_a_policy_name_has_no_control_characters(tp: Site) -> None:
    """Its minted keys are named after it. A NUL was kept on SQLite, a bare 400 on PostgreSQL."""
    for name in ("release\x00", "release\nprod"):
        with refused(400, "A policy name cannot contain control characters"):
            tp.core.trusted.create_policy(
                "alice", "alice", "github", None, PolicySettings(**{**vars(RELEASE), "name": name})
            )
    assert tp.core.trusted.policies() == []


def test_a_policy_made_or_changed_is_mailed_to_its_owner(
    make_site: Callable[..., Site], issuer: LoopbackIssuer
) -> None:
    """As a key's creation is: a policy gives keys; an organization's administrators each hear of it."""
    site = make_site(oidc_issuers=f"github={issuer.url}", oidc_audience=AUD, **MAILING)
    site.users("alice", "bob", "carol")
    policy = site.core.trusted.create_policy("alice", "alice", "github", None, RELEASE)
    [made] = site.mails("alice@example.test")
    assert made.subject == 'Trusted publishing policy "contoso/lib release.yml" created'
    site.core.orgs.create("Contoso", "bob")
    site.core.orgs.add_member("Contoso", "carol", "admin")
    site.core.orgs.add_member("Contoso", "alice", "collaborator")
    before = len(site.mails())
    site.core.trusted.create_policy("bob", "Contoso", "github", None, RELEASE)
    site.core.trusted.edit_policy("alice", policy.id, RELEASE)
    mailed = [(m.recipient, m.subject) for m in site.mails()[before:] if "policy" in m.subject]
    assert mailed == [
        ("bob@example.test", 'Trusted publishing policy "contoso/lib release.yml" created'),
        ("carol@example.test", 'Trusted publishing policy "contoso/lib release.yml" created'),
        ("alice@example.test", 'Trusted publishing policy "contoso/lib release.yml" edited'),
    ]
