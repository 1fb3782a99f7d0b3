"""The pages' pure helpers: the API key form, the sign-in redirect target, how dates and ranges read."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from nugat.keys import Scope, scope_actions
from nugat.services import ServiceError
from nugat.services.accounts import KeyView
from nugat.web import display, formbody
from nugat.web.forms import KeyForm, safe_next

NOW = datetime(2025, 3, 1, 12, 0, 0)
CHOICES = {"alice": ["Alice.Core", "Alice.Json"], "Contoso": ["Contoso.Lib"]}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/account/apikeys", "/account/apikeys"),
        ("/packages?q=a%20b", "/packages?q=a%20b"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("relative/path", "/"),
    ],
)
def test_safe_next_stays_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def parsed(**fields: str) -> KeyForm:
    packages = fields.pop("packages", "")
    return KeyForm.parse(fields, packages.split() if packages else [])


def test_a_complete_form_reads_into_service_arguments() -> None:
    form = parsed(
        name="  ci  ",
        owner="contoso",
        push="on",
        push_kind="push-version",
        unlist="on",
        glob="Contoso.*, Fabrikam.* Tools.*",
        packages="Contoso.Lib",
        expires="90",
    )
    assert form.validate(CHOICES, creating=True), form.errors
    assert form.name == "ci" and form.owner == "Contoso"  # the owner's own spelling
    assert form.scopes == ["push-version", "unlist"]
    assert form.globs == ["Contoso.*", "Fabrikam.*", "Tools.*"]
    assert form.packages == ["Contoso.Lib"]
    assert form.expires_in_days == 90


def test_push_unchecked_means_no_push_scope_whatever_the_radio_says() -> None:
    form = parsed(name="k", owner="alice", push_kind="push", unlist="on", glob="*", expires="1")
    assert form.validate(CHOICES, creating=True)
    assert form.scopes == ["unlist"]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": "", "owner": "alice", "push": "on", "push_kind": "push", "glob": "*"}, {"name"}),
        ({"name": "x" * 129, "owner": "alice", "push": "on", "push_kind": "push", "glob": "*"}, {"name"}),
        ({"name": "k", "owner": "bob", "push": "on", "push_kind": "push", "glob": "*"}, {"owner"}),
        ({"name": "k", "owner": "alice", "glob": "*"}, {"scopes"}),
        ({"name": "k", "owner": "alice", "push": "on", "push_kind": "delete", "glob": "*"}, {"scopes"}),
        ({"name": "k", "owner": "alice", "push": "on", "push_kind": "push"}, {"packages"}),
        ({"name": "k", "owner": "alice", "push": "on", "push_kind": "push", "glob": "a/b"}, {"glob"}),
        (
            {"name": "k", "owner": "alice", "push": "on", "push_kind": "push", "packages": "Contoso.Lib"},
            {"packages"},
        ),
        (
            {"name": "k", "owner": "alice", "push": "on", "push_kind": "push", "glob": "*", "expires": "30"},
            {"expires"},
        ),
        (
            {"name": "k", "owner": "alice", "push": "on", "push_kind": "push", "glob": "*", "expires": "x"},
            {"expires"},
        ),
        ({}, {"name", "owner", "scopes", "packages"}),
    ],
)
def test_each_wrong_field_gets_its_own_error(fields: dict[str, str], errors: set[str]) -> None:
    form = parsed(**{"expires": "365", **fields})
    assert not form.validate(CHOICES, creating=True)
    assert set(form.errors) == errors
    assert all(message[0].isupper() or message[0] == "'" for message in form.errors.values())


def test_an_unknown_package_names_itself_and_the_owner() -> None:
    form = parsed(
        name="k", owner="alice", push="on", push_kind="push", packages="alice.core Contoso.Lib", expires="1"
    )
    assert not form.validate(CHOICES, creating=True)
    assert form.errors == {"packages": "Contoso.Lib: not a package of alice"}


def test_a_package_posted_in_another_case_is_kept_as_the_package_spells_it() -> None:
    form = parsed(
        name="k", owner="alice", push="on", push_kind="push", packages="alice.core ALICE.CORE", expires="1"
    )
    assert form.validate(CHOICES, creating=True), form.errors
    assert form.packages == ["Alice.Core"]


def test_editing_checks_no_expiry_and_round_trips_a_key() -> None:
    key = KeyView(
        id="abc",
        name="ci",
        owner="alice",
        scopes=["push-version", "unlist"],
        globs=["Alice.*", "Tools.*"],
        packages=["Alice.Core"],
        created=NOW,
        expires=NOW + timedelta(days=30),
        last_used=None,
    )
    form = KeyForm.from_key(key)
    assert (form.chosen, form.glob) == ({"push": "push-version", "unlist": "unlist"}, "Alice.*, Tools.*")
    form.expires_in_days = 0
    assert form.validate(CHOICES, creating=False), form.errors
    assert (form.scopes, form.globs, form.packages) == (key.scopes, key.globs, key.packages)
    unlist_only = KeyForm.from_key(KeyView(**{**key.__dict__, "scopes": ["unlist"]}))
    assert ("push" in unlist_only.chosen, unlist_only.scopes) == (False, ["unlist"])


@pytest.mark.parametrize("scope", list(Scope))
def test_every_scope_is_read_from_its_checkbox_and_shown_again(scope: Scope) -> None:
    fields = {"name": "k", "owner": "alice", "glob": "*", "expires": "1", scope.action.name: "on"}
    if len(scope_actions()[scope.action]) > 1:
        fields[f"{scope.action.name}_kind"] = scope.value
    form = parsed(**fields)
    assert form.validate(CHOICES, creating=True), form.errors
    assert form.scopes == [scope.value]
    key = KeyView(
        id="abc",
        name="k",
        owner="alice",
        scopes=[scope.value],
        globs=["*"],
        packages=[],
        created=NOW,
        expires=NOW + timedelta(days=1),
        last_used=None,
    )
    shown = KeyForm.from_key(key)
    assert shown.chosen == form.chosen and shown.shown_kind(scope.action) == scope.value
    assert display.scope_label(scope.value) == scope.label


def test_the_scope_errors_name_the_checkboxes() -> None:
    none = parsed(name="k", owner="alice", glob="*", expires="1")
    unclear = parsed(name="k", owner="alice", glob="*", expires="1", push="on", push_kind="delete")
    assert not none.validate(CHOICES, creating=True) and not unclear.validate(CHOICES, creating=True)
    assert none.errors == {"scopes": "Choose at least one scope: Push, Unlist package or Read packages"}
    assert unclear.errors == {"scopes": "Choose what the key may push"}
    assert unclear.shown_kind(Scope.PUSH.action) == "push"  # the radio shows the broadest kind again


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=365), "Expires in 365 days"),
        (timedelta(days=364, hours=23), "Expires in 365 days"),
        (timedelta(hours=3), "Expires in 1 day"),
        (timedelta(days=1, seconds=1), "Expires in 2 days"),
        (timedelta(0), "Expired"),
        (timedelta(days=-3), "Expired"),
    ],
)
def test_expiry_reads_plainly(delta: timedelta, text: str) -> None:
    assert display.expiry(NOW + delta, NOW) == text


@pytest.mark.parametrize(
    ("range_text", "shown"),
    [
        ("1.2.0", ">= 1.2.0"),
        ("[1.0, 2.0)", ">= 1.0.0 && < 2.0.0"),
        ("(1.0.0, ]", "> 1.0.0"),
        ("(, 3.0]", "<= 3.0.0"),
        ("[1.5.0]", "= 1.5.0"),
        (None, "any version"),
        ("", "any version"),
        ("not a range", "not a range"),
    ],
)
def test_dependency_ranges_read_as_on_nuget_org(range_text: str | None, shown: str) -> None:
    assert display.version_range(range_text) == shown


def test_small_formatters() -> None:
    assert display.date(None) == "never"
    assert display.date(NOW) == "2025-03-01"
    assert display.datetime_utc(NOW) == "2025-03-01 12:00 UTC"
    assert display.count(1, "day") == "1 day" and display.count(1234, "download") == "1,234 downloads"
    assert display.scope_label("push") == "Push new packages and package versions"
    assert display.scope_label("push-version") == "Push only new package versions"
    assert display.scope_label("unlist") == "Unlist package"


def test_a_urlencoded_form_is_decoded_as_browsers_send_it() -> None:
    form = formbody.parse(b"login=al+ice&password=p%C3%A4ss%26word&empty=&flag&package=A&package=B", 32)
    assert form["login"] == "al ice" and form["password"] == "päss&word"
    assert form["empty"] == "" and form["flag"] == ""
    assert form.getlist("package") == ["A", "B"]


def test_a_form_of_more_fields_than_the_page_takes_is_refused() -> None:
    assert len(formbody.parse(b"&".join([b"a=1"] * 32), 32).getlist("a")) == 32
    with pytest.raises(ServiceError, match="at most 32 fields"):
        formbody.parse(b"&".join([b"a=1"] * 33), 32)
