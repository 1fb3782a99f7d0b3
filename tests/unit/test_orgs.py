"""Organizations, package owners, reserved prefixes and the audit log (services on a fresh SQLite each)."""

from __future__ import annotations

import contextlib
import itertools
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nugat import keys
from nugat.authz import OPERATOR, Operator
from nugat.core import Core
from nugat.feed import layout
from nugat.keys import KeyGrant
from nugat.prefixes import InvalidPrefix, normalize_prefix, prefix_covers, reserving_owners
from nugat.services import Conflict, Forbidden, NotFound, ServiceError
from nugat.services.orgs import Member, OrgView
from nugat.services.owners import Owner
from nugat.services.reservations import PrefixView
from nugat.services.search import Query
from nugat.settings import Settings

NS = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    core = Core(Settings(data_dir=tmp_path / "data", database_url=None, secret_key="unit-test-secret"))
    core.db.upgrade()
    for name in ("alice", "bob", "carol"):
        core.accounts.create_user(name, f"{name}@example.test", None)
    core.accounts.create_user("root", "root@example.test", None, admin=True)
    yield core
    core.close()


def nupkg(tmp_path: Path, package_id: str, version: str) -> Path:
    path = tmp_path / f"{package_id}.{version}.nupkg"
    spec = (
        f'<?xml version="1.0" encoding="utf-8"?><package xmlns="{NS}"><metadata><id>{package_id}</id>'
        f"<version>{version}</version><authors>a</authors><description>d</description></metadata></package>"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{package_id}.nuspec", spec)
    return path


_names = itertools.count(1)


def secret_of(core: Core, user: str, *scopes: str, owner: str | None = None) -> str:
    _, secret = core.accounts.create_key(user, f"k{next(_names)}", list(scopes), ["*"], [], None, owner)
    return secret


def key(core: Core, user: str, *scopes: str, owner: str | None = None) -> KeyGrant:
    grant, _ = core.accounts.verify_key(secret_of(core, user, *scopes, owner=owner), "10.0.0.1")
    return grant


def push(core: Core, tmp_path: Path, grant: KeyGrant, package_id: str, version: str = "1.0.0") -> None:
    core.packages.push(nupkg(tmp_path, package_id, version), grant, "10.0.0.1")


@contextlib.contextmanager
def refused(status: int, reason: str) -> Iterator[None]:
    """A push or unlist refused with HTTP ``status`` and a reason matching ``reason``."""
    with pytest.raises(ServiceError, match=reason) as info:
        yield
    assert info.value.status == status


def actions(
    core: Core, *, viewer: str | Operator = OPERATOR, user: str | None = None, package: str | None = None
) -> list[str]:
    return [e.action for e in reversed(core.audit.events(viewer=viewer, user=user, package=package))]


# Organizations ----------------------------------------------------------------------------------------


def test_create_org_with_its_first_admin(core: Core) -> None:
    org = core.orgs.create("Contoso", "alice")
    assert (org.kind, org.password_hash, org.email) == ("org", None, None)
    assert core.orgs.members("contoso") == [Member("alice", "admin")]
    assert core.orgs.of_user("alice") == [Member("Contoso", "admin")]
    assert core.orgs.all() == [OrgView("Contoso", [Member("alice", "admin")])]
    # an organization cannot sign in and is not a user
    assert core.accounts.authenticate("Contoso", "anything at all") is None
    assert [u.name for u in core.accounts.users()] == ["alice", "bob", "carol", "root"]


def test_org_names_are_unique_among_all_accounts(core: Core) -> None:
    with pytest.raises(Conflict):
        core.orgs.create("BOB", "alice")
    core.orgs.create("Contoso", "alice")
    with pytest.raises(Conflict):
        core.orgs.create("contoso", "bob")
    with pytest.raises(ServiceError, match="organization name"):
        core.orgs.create("-bad name", "alice")


def test_a_user_creates_orgs_only_for_itself(core: Core) -> None:
    with pytest.raises(Forbidden):
        core.orgs.create("Contoso", "bob", by="alice")
    core.orgs.create("Contoso", "alice", by="alice")
    core.orgs.create("Fabrikam", "bob", by="root")  # a site admin may
    assert core.orgs.members("Fabrikam") == [Member("bob", "admin")]
    with pytest.raises(NotFound):
        core.orgs.create("Other", "Contoso")  # an org cannot administer an org


def test_members_and_roles(core: Core) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator", by="alice")
    core.orgs.add_member("Contoso", "carol", "admin")
    assert core.orgs.members("Contoso") == [
        Member("alice", "admin"),
        Member("carol", "admin"),
        Member("bob", "collaborator"),
    ]
    with pytest.raises(Conflict, match="already a member"):
        core.orgs.add_member("Contoso", "bob", "admin")
    with pytest.raises(ServiceError, match="Unknown role"):
        core.orgs.add_member("Contoso", "root", "owner")
    core.orgs.change_role("Contoso", "bob", "admin", by="carol")
    core.orgs.remove_member("Contoso", "alice", by="bob")
    assert core.orgs.members("Contoso") == [Member("bob", "admin"), Member("carol", "admin")]
    assert core.orgs.of_user("alice") == []


def test_only_admins_manage_members(core: Core) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    attempts: list[Callable[[], None]] = [
        lambda: core.orgs.add_member("Contoso", "carol", "collaborator", by="bob"),
        lambda: core.orgs.change_role("Contoso", "bob", "admin", by="bob"),
        lambda: core.orgs.remove_member("Contoso", "alice", by="bob"),
        lambda: core.orgs.add_member("Contoso", "carol", "admin", by="carol"),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden, match="Only administrators of Contoso"):
            attempt()
    core.orgs.add_member("Contoso", "carol", "collaborator", by="root")  # site admins may
    core.orgs.remove_member("Contoso", "bob", by="bob")  # members may leave
    assert core.orgs.members("Contoso") == [Member("alice", "admin"), Member("carol", "collaborator")]


def test_the_last_admin_stays(core: Core) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    with pytest.raises(Conflict, match="at least one administrator"):
        core.orgs.remove_member("Contoso", "alice", by="alice")
    with pytest.raises(Conflict, match="at least one administrator"):
        core.orgs.change_role("Contoso", "alice", "collaborator")
    core.orgs.change_role("Contoso", "bob", "admin")
    core.orgs.change_role("Contoso", "alice", "collaborator")
    assert core.orgs.members("Contoso") == [Member("bob", "admin"), Member("alice", "collaborator")]


def test_member_changes_name_users_and_orgs(core: Core) -> None:
    core.orgs.create("Contoso", "alice")
    with pytest.raises(NotFound):
        core.orgs.add_member("Contoso", "nobody", "admin")
    with pytest.raises(NotFound):
        core.orgs.add_member("alice", "bob", "admin")  # alice is a user, not an org
    with pytest.raises(NotFound, match="not a member"):
        core.orgs.remove_member("Contoso", "bob")


def test_org_keys_and_packages(core: Core, tmp_path: Path) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    bob_org = key(core, "bob", "push", owner="Contoso")
    key(core, "bob", "push")  # bob's own key is not the org's
    with pytest.raises(ServiceError, match="not a member"):
        key(core, "carol", "push", owner="Contoso")
    push(core, tmp_path, bob_org, "Contoso.Lib")
    assert core.orgs.packages("Contoso") == ["Contoso.Lib"]
    assert core.owners.of_package("Contoso.Lib") == [Owner("Contoso", "org")]
    org_keys = core.orgs.keys("Contoso", by="alice")
    assert [(k.creator, k.key.id, k.key.owner) for k in org_keys] == [("bob", bob_org.key_id, "Contoso")]
    with pytest.raises(Forbidden):
        core.orgs.keys("Contoso", by="bob")  # collaborators do not see the org's keys


def test_removed_members_org_key_is_revoked_for_good(core: Core, tmp_path: Path) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    secret = secret_of(core, "bob", "push", "unlist", owner="Contoso")
    own = secret_of(core, "bob", "push")
    bob_org, _ = core.accounts.verify_key(secret, "10.0.0.1")
    push(core, tmp_path, bob_org, "Contoso.Lib")
    core.orgs.remove_member("Contoso", "bob")
    revoked = "was revoked on .*: bob is no longer a member of Contoso"
    with refused(403, revoked):
        core.accounts.verify_key(secret, "10.0.0.1")
    with refused(403, "its creator no longer does"):  # a grant verified before: refused all the same
        push(core, tmp_path, bob_org, "Contoso.Lib", "1.1.0")
    with refused(403, "its creator no longer does"):
        core.packages.set_listed("Contoso.Lib", "1.0.0", False, bob_org, "10.0.0.1")
    core.orgs.add_member("Contoso", "bob", "admin")  # back in: the revoked key stays dead
    with refused(403, revoked):
        core.accounts.verify_key(secret, "10.0.0.1")
    core.accounts.verify_key(own, "10.0.0.1")  # bob's own key was never the org's
    [view] = [k for k in core.accounts.list_keys("bob") if k.owner == "Contoso"]
    assert (view.state, view.revoked_reason) == ("revoked", "bob is no longer a member of Contoso")
    [event] = [e for e in core.audit.events() if e.action == "key.revoke"]
    assert (event.key_id, event.account, event.detail["reason"]) == (
        view.id,
        "Contoso",
        "bob is no longer a member of Contoso",
    )


# Package owners -------------------------------------------------------------------------------------


@pytest.fixture
def lib(core: Core, tmp_path: Path) -> str:
    """Alice.Lib, owned by alice."""
    push(core, tmp_path, key(core, "alice", "push"), "Alice.Lib")
    return "Alice.Lib"


def test_invitation_accepted(core: Core, tmp_path: Path, lib: str) -> None:
    bob = key(core, "bob", "push")
    with refused(403, "bob is not an owner"):
        push(core, tmp_path, bob, lib, "1.1.0")
    core.owners.invite(lib, "bob", by="alice")
    assert [(i.package_id, i.new_owner, i.requested_by) for i in core.owners.invitations_to("bob")] == [
        ("Alice.Lib", "bob", "alice")
    ]
    assert [i.new_owner for i in core.owners.invitations_for_package(lib)] == ["bob"]
    with refused(403, "bob is not an owner"):
        push(core, tmp_path, bob, lib, "1.1.0")  # an invitation is not ownership
    with pytest.raises(Forbidden):
        core.owners.accept(lib, "bob", by="alice")  # only the invited accepts
    core.owners.accept(lib, "bob", by="bob")
    assert core.owners.of_package(lib) == [Owner("alice", "user"), Owner("bob", "user")]
    assert core.owners.invitations_to("bob") == []
    push(core, tmp_path, bob, lib, "1.1.0")


def test_invitation_rejected_or_cancelled(core: Core, lib: str) -> None:
    core.owners.invite(lib, "bob", by="alice")
    with pytest.raises(Conflict, match="already invited"):
        core.owners.invite(lib, "bob", by="alice")
    core.owners.reject(lib, "bob", by="bob")
    core.owners.invite(lib, "bob", by="alice")
    with pytest.raises(Forbidden):
        core.owners.cancel(lib, "bob", by="bob")  # bob is not an owner
    core.owners.cancel(lib, "bob", by="alice")
    assert core.owners.invitations_for_package(lib) == []
    with pytest.raises(NotFound, match="no pending invitation"):
        core.owners.accept(lib, "bob", by="bob")
    assert core.owners.of_package(lib) == [Owner("alice", "user")]


def test_only_owners_invite(core: Core, lib: str) -> None:
    with pytest.raises(Forbidden, match=r"Only owners of Alice\.Lib"):
        core.owners.invite(lib, "carol", by="bob")
    with pytest.raises(Conflict, match="already owns"):
        core.owners.invite(lib, "alice", by="alice")
    with pytest.raises(NotFound):
        core.owners.invite("No.Such.Package", "bob", by="alice")


def test_org_invitation_answered_by_an_org_admin(core: Core, tmp_path: Path, lib: str) -> None:
    core.orgs.create("Contoso", "carol")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    core.owners.invite(lib, "Contoso", by="alice")
    assert core.owners.invitations_to("bob") == []
    assert [i.new_owner for i in core.owners.invitations_to("carol")] == ["Contoso"]
    with pytest.raises(Forbidden):
        core.owners.accept(lib, "Contoso", by="bob")  # a collaborator cannot
    core.owners.accept(lib, "Contoso", by="carol")
    push(core, tmp_path, key(core, "bob", "push", owner="Contoso"), lib, "1.1.0")
    # org admins manage the owners of the org's packages; collaborators do not
    core.owners.invite(lib, "root", by="carol")
    with pytest.raises(Forbidden):
        core.owners.cancel(lib, "root", by="bob")


def test_remove_owner_but_never_the_last(core: Core, lib: str) -> None:
    with pytest.raises(Conflict, match="last owner"):
        core.owners.remove(lib, "alice", by="alice")
    core.owners.add(lib, "bob")  # the command line adds directly
    with pytest.raises(Forbidden, match="Only site admins"):
        core.owners.add(lib, "carol", by="alice")
    with pytest.raises(Conflict, match="already owns"):
        core.owners.add(lib, "bob", by="root")
    with pytest.raises(Forbidden):
        core.owners.remove(lib, "alice", by="carol")
    core.owners.remove(lib, "alice", by="bob")
    assert core.owners.of_package(lib) == [Owner("bob", "user")]
    with pytest.raises(NotFound, match="does not own"):
        core.owners.remove(lib, "alice")
    with pytest.raises(Conflict, match="last owner"):
        core.owners.remove(lib, "bob")


def test_direct_add_settles_a_pending_invitation(core: Core, lib: str) -> None:
    core.owners.invite(lib, "bob", by="alice")
    core.owners.add(lib, "bob")
    assert core.owners.invitations_for_package(lib) == []


# Audit ----------------------------------------------------------------------------------------------


def test_audit_records_every_step_with_who_where_and_key(core: Core, tmp_path: Path) -> None:
    core.orgs.create("Contoso", "alice", by="alice", address="10.0.0.9")
    core.orgs.add_member("Contoso", "bob", "collaborator", by="alice", address="10.0.0.9")
    view, _ = core.accounts.create_key("bob", "ci", ["push", "unlist"], ["Contoso.*"], [], None, "Contoso")
    grant = key(core, "bob", "push", "unlist", owner="Contoso")
    core.accounts.edit_key("bob", view.id, name="ci-2", address="10.0.0.2")
    core.accounts.regenerate_key("bob", view.id, address="10.0.0.2")
    core.accounts.delete_key("bob", view.id, address="10.0.0.2")
    push(core, tmp_path, grant, "Contoso.Lib")
    core.packages.set_listed("Contoso.Lib", "1.0.0", False, grant, "10.0.0.1")
    core.packages.set_listed("Contoso.Lib", "1.0.0", True, grant, "10.0.0.1")
    core.orgs.change_role("Contoso", "bob", "admin", by="alice")
    core.owners.invite("Contoso.Lib", "carol", by="bob")
    core.owners.accept("Contoso.Lib", "carol", by="carol")
    core.owners.remove("Contoso.Lib", "carol", by="bob")
    core.orgs.remove_member("Contoso", "bob", by="alice")
    with refused(403, "no longer does"):
        push(core, tmp_path, grant, "Contoso.Lib", "2.0.0")
    assert actions(core) == [
        "org.create",
        "org.member_add",
        "key.create",
        "key.create",
        "key.edit",
        "key.regenerate",
        "key.delete",
        "package.push",
        "package.unlist",
        "package.relist",
        "org.member_role",
        "owner.invite",
        "owner.add",
        "owner.remove",
        "org.member_remove",
        "key.revoke",
        "key.use_failed",
    ]
    events = {e.action: e for e in core.audit.events()}
    assert (events["org.member_add"].actor, events["org.member_add"].account) == ("alice", "Contoso")
    assert events["org.member_add"].detail == {"member": "bob", "role": "collaborator"}
    assert events["org.member_add"].address == "10.0.0.9"
    assert (events["key.delete"].key_id, events["key.delete"].address) == (view.id, "10.0.0.2")
    pushed = events["package.push"]
    assert (pushed.actor, pushed.account, pushed.package_id, pushed.version) == (
        "bob",
        "Contoso",
        "Contoso.Lib",
        "1.0.0",
    )
    assert (pushed.key_id, pushed.address) == (grant.key_id, "10.0.0.1")
    failed = events["key.use_failed"]
    assert (failed.actor, failed.account, failed.key_id, failed.version) == (
        "bob",
        "Contoso",
        grant.key_id,
        "2.0.0",
    )
    assert failed.detail["operation"] == "push" and "no longer does" in failed.detail["reason"]
    assert (events["owner.add"].actor, events["owner.add"].account) == ("carol", "carol")


def test_audit_never_holds_a_secret(core: Core) -> None:
    _, secret = core.accounts.create_key("alice", "k", ["push"], ["*"], [], None)
    view, new_secret = core.accounts.regenerate_key("alice", secret.split("_")[1])
    dumped = repr([e.as_json() for e in core.audit.events()])
    assert view.id in dumped
    for presented in (secret, new_secret):
        parsed = keys.parse_key(presented)
        assert parsed is not None and parsed.secret not in dumped


def test_failed_key_uses_are_audited(core: Core, tmp_path: Path) -> None:
    _, secret = core.accounts.create_key("alice", "k", ["push"], ["Alice.*"], [], None)
    key_id = secret.split("_")[1]
    wrong_secret = keys.new_key(key_id)  # well formed, right key id, wrong secret
    for presented in (wrong_secret, keys.new_key("aaaaaaaaaaaaaaaa"), "garbage"):
        with pytest.raises(ServiceError):
            core.accounts.verify_key(presented, "10.6.6.6")
    grant, _ = core.accounts.verify_key(secret, "10.0.0.1")
    with refused(403, "matches no package"):
        push(core, tmp_path, grant, "Other.Lib")
    failures = [e for e in reversed(core.audit.events()) if e.action == "key.use_failed"]
    assert [(e.address, e.key_id, e.account) for e in failures] == [
        ("10.6.6.6", key_id, "alice"),
        ("10.6.6.6", "aaaaaaaaaaaaaaaa", None),  # unknown keys: only site admins see them
        ("10.6.6.6", None, None),
        ("10.0.0.1", key_id, "alice"),
    ]
    assert failures[0].detail == {"reason": f"The secret of API key {key_id} is wrong"}
    assert failures[3].package_id == "Other.Lib" and "matches no package" in failures[3].detail["reason"]
    assert [e.action for e in core.audit.events(viewer="alice")].count("key.use_failed") == 2


def test_audit_visibility(core: Core, tmp_path: Path) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator", by="alice")
    push(core, tmp_path, key(core, "bob", "push", owner="Contoso"), "Contoso.Lib")
    push(core, tmp_path, key(core, "carol", "push"), "Carol.Lib")
    everything = actions(core)
    assert actions(core, viewer="root") == everything  # site admins see all
    # alice administers Contoso: she sees its events, not carol's
    assert actions(core, viewer="alice") == [
        "org.create",
        "org.member_add",
        "key.create",
        "package.push",
    ]
    # bob sees what he did, not the org's other events
    assert actions(core, viewer="bob") == ["key.create", "package.push"]
    assert actions(core, viewer="carol") == ["key.create", "package.push"]
    assert actions(core, user="carol") == ["key.create", "package.push"]
    assert actions(core, package="contoso.lib") == ["package.push"]
    assert len(core.audit.events(limit=2)) == 2
    with pytest.raises(NotFound):
        core.audit.events(user="nobody")


# Reserved prefixes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [("Contoso.*", "Contoso.*"), ("Contoso.", "Contoso.*"), (" Contoso ", "Contoso"), ("Fab*", "Fab*")],
)
def test_prefix_forms(text: str, normalized: str) -> None:
    assert normalize_prefix(text) == normalized


@pytest.mark.parametrize("text", ["*", "", "Con*oso", "Contoso.**", "Contoso/Lib", "." + "a" * 100])
def test_invalid_prefixes(text: str) -> None:
    with pytest.raises(InvalidPrefix):
        normalize_prefix(text)


@pytest.mark.parametrize(
    ("prefix", "package_id", "covered"),
    [
        ("Contoso.*", "Contoso.Core", True),
        ("Contoso.*", "contoso.core.extra", True),
        ("Contoso.*", "Contoso", False),
        ("Contoso.*", "ContosoLib", False),
        ("Contoso", "CONTOSO", True),
        ("Contoso", "Contoso.Core", False),
        ("Fab*", "Fabrikam", True),
        ("Fab*", "Fa", False),
    ],
)
def test_prefix_covers(prefix: str, package_id: str, covered: bool) -> None:
    assert prefix_covers(prefix, package_id) is covered


def test_reserving_owners() -> None:
    reservations = [("Contoso.*", 1), ("Contoso.*", 2), ("Contoso.Core", 3), ("Other.*", 4)]
    assert reserving_owners("Contoso.Core", reservations) == {1, 2, 3}
    assert reserving_owners("Contoso.Lib", reservations) == {1, 2}
    assert reserving_owners("Mine.Lib", reservations) == frozenset()


def registration_entries(core: Core, package_id: str) -> list[dict[str, Any]]:
    data = core.storage.get_bytes(layout.registration_index("registration-semver2", package_id.lower()))
    assert data is not None
    return [leaf["catalogEntry"] for page in json.loads(data)["items"] for leaf in page["items"]]


def verified_in_search(core: Core, package_id: str) -> bool:
    _, hits = core.search.search(Query(q=package_id))
    return next(h.verified for h in hits if h.registration.package_id == package_id)


def test_reserved_prefix_blocks_new_ids_of_others(core: Core, tmp_path: Path) -> None:
    core.orgs.create("Contoso", "alice")
    core.orgs.add_member("Contoso", "bob", "collaborator")
    assert core.prefixes.reserve("Contoso.", ["Contoso"], by="root") == "Contoso.*"
    assert core.prefixes.all() == [PrefixView("Contoso.*", ["Contoso"])]
    carol = key(core, "carol", "push")
    with refused(409, "Contoso.Lib is in a reserved prefix"):
        push(core, tmp_path, carol, "Contoso.Lib")
    with refused(409, "reserved prefix"):  # bob's own key does not act for Contoso
        push(core, tmp_path, key(core, "bob", "push"), "contoso.lib")
    push(core, tmp_path, carol, "Contoso")  # the prefix Contoso.* does not cover the id Contoso
    push(core, tmp_path, key(core, "bob", "push", owner="Contoso"), "Contoso.Lib")
    assert core.owners.of_package("Contoso.Lib") == [Owner("Contoso", "org")]


def test_exact_reservation_and_several_owners(core: Core, tmp_path: Path) -> None:
    core.prefixes.reserve("Fabrikam", ["alice"])
    core.prefixes.reserve("Fabrikam", ["bob", "alice"])
    assert core.prefixes.all() == [PrefixView("Fabrikam", ["alice", "bob"])]
    with pytest.raises(Conflict, match="already reserved"):
        core.prefixes.reserve("fabrikam", ["alice"])
    with refused(409, "reserved prefix"):
        push(core, tmp_path, key(core, "carol", "push"), "Fabrikam")
    push(core, tmp_path, key(core, "carol", "push"), "Fabrikam.Extra")
    push(core, tmp_path, key(core, "bob", "push"), "Fabrikam")


def test_existing_ids_keep_their_owners_after_a_reservation(core: Core, tmp_path: Path) -> None:
    carol = key(core, "carol", "push")
    push(core, tmp_path, carol, "Contoso.Old")
    core.prefixes.reserve("Contoso.*", ["alice"])
    push(core, tmp_path, carol, "Contoso.Old", "2.0.0")
    assert not verified_in_search(core, "Contoso.Old")


def test_only_site_admins_reserve(core: Core) -> None:
    with pytest.raises(Forbidden, match="site admins"):
        core.prefixes.reserve("Contoso.*", ["alice"], by="alice")
    with pytest.raises(ServiceError, match="invalid prefix"):
        core.prefixes.reserve("*", ["alice"])
    with pytest.raises(NotFound):
        core.prefixes.reserve("Contoso.*", ["nobody"])
    core.prefixes.reserve("Contoso.*", ["alice"], by="root")
    with pytest.raises(Forbidden):
        core.prefixes.release("Contoso.*", by="alice")
    assert core.prefixes.all() == [PrefixView("Contoso.*", ["alice"])]


def test_release(core: Core, tmp_path: Path) -> None:
    core.prefixes.reserve("Contoso.*", ["alice", "bob"])
    core.prefixes.release("Contoso.", "bob")
    assert core.prefixes.all() == [PrefixView("Contoso.*", ["alice"])]
    with pytest.raises(NotFound, match="not reserved for bob"):
        core.prefixes.release("Contoso.*", "bob")
    core.prefixes.release("Contoso.*")
    assert core.prefixes.all() == []
    push(core, tmp_path, key(core, "carol", "push"), "Contoso.Lib")


def test_verified_follows_reservations_and_owners(core: Core, tmp_path: Path) -> None:
    push(core, tmp_path, key(core, "alice", "push"), "Contoso.Lib")
    assert [e["verified"] for e in registration_entries(core, "Contoso.Lib")] == [False]
    assert not verified_in_search(core, "Contoso.Lib")

    core.prefixes.reserve("Contoso.*", ["bob"])  # not an owner of the package: still not verified
    assert not registration_entries(core, "Contoso.Lib")[0]["verified"]
    core.owners.add("Contoso.Lib", "bob")
    assert registration_entries(core, "Contoso.Lib")[0]["verified"]
    assert verified_in_search(core, "Contoso.Lib")

    push(core, tmp_path, key(core, "alice", "push"), "Contoso.Lib", "2.0.0")
    assert [e["verified"] for e in registration_entries(core, "Contoso.Lib")] == [True, True]
    core.owners.remove("Contoso.Lib", "bob")
    assert [e["verified"] for e in registration_entries(core, "Contoso.Lib")] == [False, False]

    core.prefixes.reserve("Contoso.*", ["alice"])  # reserving rebuilds the ids it covers
    assert registration_entries(core, "Contoso.Lib")[0]["verified"]
    core.prefixes.release("Contoso.*", "alice")
    assert not registration_entries(core, "Contoso.Lib")[0]["verified"]
    assert not verified_in_search(core, "Contoso.Lib")


def test_prefix_changes_are_audited(core: Core) -> None:
    core.prefixes.reserve("Contoso.*", ["alice"], by="root", address="10.0.0.5")
    core.prefixes.release("Contoso.*", by="root")
    events = list(reversed(core.audit.events(viewer="alice")))
    assert [(e.action, e.actor, e.account, e.detail) for e in events] == [
        ("prefix.reserve", "root", "alice", {"prefix": "Contoso.*"}),
        ("prefix.release", "root", "alice", {"prefix": "Contoso.*"}),
    ]
    assert events[0].address == "10.0.0.5"
