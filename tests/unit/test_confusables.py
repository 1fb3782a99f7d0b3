"""Look-alike package ids (``nugat.confusables``) and the push rule that refuses them (``authz.can_push``)."""

from __future__ import annotations

from datetime import datetime

import pytest

from nugat.authz import can_push
from nugat.confusables import skeleton
from nugat.keys import KeyGrant


@pytest.mark.parametrize(
    "lookalike",
    [
        "Newtonsoft.Json",
        "newtonsoft.json",
        "Newtonsoft-Json",
        "Newtonsoft_Json",
        "NewtonsoftJson",
        "Newt0nsoft.Json",
        "NewtonsoftJ5on",
        "NEWTONSOFT.JSON",
        "NewtonsoftJs0n",
        "Newtonsoft.J\uff53on",  # fullwidth s (refused as non-ASCII anyway, still the same skeleton)
    ],
)
def test_lookalikes_share_a_skeleton(lookalike: str) -> None:
    assert skeleton(lookalike) == skeleton("Newtonsoft.Json")


@pytest.mark.parametrize(
    ("left", "right"),
    [("Contoso.Core", "Contoso.Corn"), ("Contoso.Json", "Contoso.Yaml"), ("Ab", "Abc"), ("x1", "x2")],
)
def test_different_ids_have_different_skeletons(left: str, right: str) -> None:
    assert skeleton(left) != skeleton(right)


def test_i_l_and_1_look_alike() -> None:
    assert skeleton("Il1.Pkg") == skeleton("lll.Pkg") == skeleton("iIi.pkg")


def test_multi_letter_lookalikes() -> None:
    assert skeleton("Modern") == skeleton("Mo-dern") == skeleton("Modem") == skeleton("rnodern")
    assert skeleton("Vvidget") == skeleton("Widget")


GRANT = KeyGrant(
    key_id="k1",
    user_id=1,
    owner_id=1,
    owner_name="mallory",
    scopes=frozenset({"push"}),
    globs=("*",),
    packages=(),
    expires_at=datetime(2100, 1, 1),
)


def test_a_new_id_confusable_with_another_owners_id_is_refused() -> None:
    decision = can_push(
        GRANT,
        "Newt0nsoft.Json",
        exists=False,
        owner_ids=frozenset(),
        actor_is_member=True,
        looks_like="Newtonsoft.Json",
    )
    assert (decision.allowed, decision.status) == (False, 409)
    assert decision.reason == (
        "The package id Newt0nsoft.Json is too similar to the existing package Newtonsoft.Json: "
        "choose a different id"
    )
    assert can_push(
        GRANT, "Newt0nsoft.Json", exists=False, owner_ids=frozenset(), actor_is_member=True
    ).allowed
