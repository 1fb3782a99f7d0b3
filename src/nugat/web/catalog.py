"""What a package's page shows, read from the database and the stored readme (no web framework)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nugat.db import Database
from nugat.db.models import Account, Membership, PackageOwner, PackageRegistration, PackageVersion
from nugat.feed import layout
from nugat.services.reservations import is_verified
from nugat.storage import Storage, StorageError
from nugat.versions import InvalidVersion, parse_version

README_LIMIT = 256 << 10


@dataclass(frozen=True)
class Details:
    package_id: str
    shown: PackageVersion
    versions: list[PackageVersion]  # newest first: the listed ones, the shown one, and to owners all
    owners: list[str]
    total_downloads: int
    readme: str | None
    linked: frozenset[str] = frozenset()  # the dependencies (lowercased) with a page this viewer may see
    verified: bool = False  # an owner holds a reserved prefix covering the id (as search and registration)


def _default(versions: list[PackageVersion]) -> PackageVersion | None:
    """The version a bare ``/packages/{id}`` shows: the newest listed stable one, as nuget.org."""
    pool = [v for v in versions if v.listed] or versions
    return next((v for v in pool if not v.is_prerelease), pool[0] if pool else None)


def _owns(s: Session, reg: PackageRegistration, user_name: str) -> bool:
    """Whether the user owns the package, or is a member of an organization that does (My packages)."""
    user = s.scalar(select(Account).where(Account.name_lower == user_name.lower(), Account.kind == "user"))
    if user is None:
        return False
    owners = set(s.scalars(select(PackageOwner.account_id).where(PackageOwner.registration_id == reg.id)))
    if user.id in owners:
        return True
    orgs = s.scalars(select(Membership.org_id).where(Membership.member_id == user.id))
    return not owners.isdisjoint(orgs)


def _dependency_ids(version: PackageVersion) -> set[str]:
    groups = version.metadata_json.get("dependency_groups") or []
    return {dep["id"].lower() for group in groups for dep in group.get("dependencies") or []}


def package_details(
    db: Database,
    storage: Storage,
    package_id: str,
    version: str | None,
    viewer: str | None = None,
    may_read: Callable[[str], bool] = lambda _: True,
) -> Details | None:
    """What the page shows; ``viewer``: the signed-in user, who sees unlisted versions if an owner.

    A dependency links to its page only when it exists and ``may_read`` it: one the viewer may not see is
    shown as plain text, as one never pushed here is (its id is in the package's nuspec for all to read).
    """
    with db.reading() as s:
        reg = s.scalar(select(PackageRegistration).where(PackageRegistration.id_lower == package_id.lower()))
        if reg is None:
            return None
        owner = viewer is not None and _owns(s, reg, viewer)
        rows = s.scalars(select(PackageVersion).where(PackageVersion.registration_id == reg.id))
        versions = sorted(rows, key=lambda v: parse_version(v.version), reverse=True)
        owners = list(
            s.scalars(
                select(Account.name)
                .join(PackageOwner, PackageOwner.account_id == Account.id)
                .where(PackageOwner.registration_id == reg.id)
                .order_by(Account.name_lower)
            )
        )
        verified = is_verified(s, reg.id, reg.package_id)
    if version is None:
        shown = _default(versions)
    else:
        try:
            wanted = parse_version(version).normalized.lower()
        except InvalidVersion:
            return None
        shown = next((v for v in versions if v.version_lower == wanted), None)
    if shown is None:
        return None
    dependencies = _dependency_ids(shown)
    with db.reading() as s:
        existing = s.scalars(
            select(PackageRegistration.id_lower).where(PackageRegistration.id_lower.in_(sorted(dependencies)))
        )
        linked = frozenset(i for i in existing if may_read(i))
    readme = None
    if shown.metadata_json.get("readme_file"):
        try:
            data = storage.get_bytes(f"{layout.FLAT}/{reg.id_lower}/{shown.version_lower}/readme")
        except StorageError:
            data = None
        readme = data[:README_LIMIT].decode("utf-8", "replace") if data else None
    return Details(
        package_id=shown.package_id,
        shown=shown,
        versions=[v for v in versions if v.listed or v is shown or owner],
        owners=owners,
        total_downloads=reg.total_downloads,
        readme=readme,
        linked=linked,
        verified=verified,
    )
