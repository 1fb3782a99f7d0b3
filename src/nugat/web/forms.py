"""The API key form and the sign-in redirect target, read and checked field by field (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nugat import keys
from nugat.keys import DEFAULT_SCOPE, Action, Scope, scope_actions
from nugat.services.accounts import KeyView

EXPIRY_CHOICES = (1, 90, 180, 270, 365)
DEFAULT_EXPIRY = 365
_SPLIT = re.compile(r"[\s,]+")
_SAFE_PATH = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site (``//evil``, ``https:``)."""
    return target if target and _SAFE_PATH.match(target) else "/"


def _days(choices: Sequence[int]) -> str:
    return f"{', '.join(map(str, choices[:-1]))} or {choices[-1]} days"


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _default_scopes() -> dict[str, str]:
    return {DEFAULT_SCOPE.action.name: DEFAULT_SCOPE.value}


@dataclass
class KeyForm:
    name: str = ""
    owner: str = ""
    # each checked scope checkbox (``Action.name``) with the scope chosen under it: the posted kind (maybe
    # not one of its kinds) for a checkbox offering several, else its own scope
    chosen: dict[str, str] = field(default_factory=_default_scopes)
    glob: str = ""
    packages: list[str] = field(default_factory=list)
    expires_in_days: int = DEFAULT_EXPIRY
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_key(cls, key: KeyView) -> KeyForm:
        chosen: dict[str, str] = {}
        for name in key.scopes:
            scope = Scope.named(name)
            if scope is not None:
                chosen.setdefault(scope.action.name, scope.value)
        return cls(
            name=key.name,
            owner=key.owner,
            chosen=chosen,
            glob=", ".join(key.globs),
            packages=list(key.packages),
        )

    @classmethod
    def parse(cls, fields: Mapping[str, str], packages: Sequence[str]) -> KeyForm:
        """Read the posted form: ``fields`` are its single values, ``packages`` the checked package ids."""
        try:
            days = int(fields.get("expires", ""))
        except ValueError:
            days = 0
        chosen = {  # a checkbox's kinds are ignored while it is unchecked
            action.name: fields.get(f"{action.name}_kind", "") if len(kinds) > 1 else kinds[0].value
            for action, kinds in scope_actions().items()
            if fields.get(action.name)
        }
        return cls(
            name=fields.get("name", "").strip(),
            owner=fields.get("owner", "").strip(),
            chosen=chosen,
            glob=fields.get("glob", "").strip(),
            packages=[p.strip() for p in packages if p.strip()],
            expires_in_days=days,
        )

    def keep_scopes_of(self, key: KeyView) -> None:
        """Editing: the key's own scopes, whatever was posted (a key's scopes never change)."""
        self.chosen = KeyForm.from_key(key).chosen

    def shown_kind(self, action: Action) -> str:
        """The kind the form shows chosen under ``action``: the chosen one, else its first (broadest)."""
        kinds = scope_actions()[action]
        kind = self.chosen.get(action.name, "")
        return kind if kind in kinds else kinds[0].value

    @property
    def shown_expiry(self) -> int:
        """The expiration the form shows: the user's choice, or the default if it was not in the list."""
        return self.expires_in_days if self.expires_in_days in EXPIRY_CHOICES else DEFAULT_EXPIRY

    @property
    def scopes(self) -> list[str]:
        return [self.chosen[action.name] for action in scope_actions() if action.name in self.chosen]

    @property
    def globs(self) -> list[str]:
        return [g for g in _SPLIT.split(self.glob) if g]

    def validate(self, selectable: Mapping[str, Sequence[str]], *, creating: bool) -> bool:
        """Check every field; ``selectable`` maps each owner the user may choose to its package ids."""
        errors: dict[str, str] = {}
        if not 1 <= len(self.name) <= keys.MAX_NAME:
            errors["name"] = f"Give the key a name (at most {keys.MAX_NAME} characters)"
        elif (problem := keys.name_problem(self.name)) is not None:
            errors["name"] = problem
        owners = {o.lower(): o for o in selectable}
        owner = owners.get(self.owner.lower())
        if owner is None:
            errors["owner"] = "Choose a package owner from the list"
        else:
            self.owner = owner
        actions = scope_actions()
        unclear = [
            a for a, kinds in actions.items() if a.name in self.chosen and self.chosen[a.name] not in kinds
        ]
        if unclear:
            errors["scopes"] = f"Choose what the key may {unclear[0].name}"
        elif not self.scopes:
            errors["scopes"] = f"Choose at least one scope: {keys.one_of(a.label for a in actions)}"
        if self.globs:
            try:
                keys.normalize_settings([Scope.PUSH], self.globs, [], None)
            except keys.InvalidKeySettings as exc:
                errors["glob"] = _sentence(str(exc))
        if not self.globs and not self.packages:
            errors["packages"] = "Give a glob pattern or select at least one package"
        elif owner is not None:
            allowed = {p.lower(): p for p in selectable[owner]}
            unknown = [p for p in self.packages if p.lower() not in allowed]
            if unknown:
                errors["packages"] = f"{', '.join(unknown)}: not a package of {owner}"
            else:  # each id as its package spells it, once (``contoso.core`` posted: ``Contoso.Core``)
                self.packages = list(dict.fromkeys(allowed[p.lower()] for p in self.packages))
        if creating and self.expires_in_days not in EXPIRY_CHOICES:
            errors["expires"] = f"Choose an expiration from the list: {_days(EXPIRY_CHOICES)}"
        self.errors = errors
        return not errors
