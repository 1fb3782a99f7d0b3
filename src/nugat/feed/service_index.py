"""The service index: every resource type the official clients look up, all below ``/v3/``.

Package content (flat container, registration, readme) is at ``content``: the feed's own base URL, or
the content origin (``NUGAT_CONTENT_URL``) when one is set.
"""

from __future__ import annotations

from typing import Any

_SEARCH = ("", "/3.0.0-beta", "/3.0.0-rc", "/3.4.0", "/3.5.0")
_REGISTRATION_SEMVER1 = ("", "/3.0.0-beta", "/3.0.0-rc", "/3.4.0")


def service_index(base: str, content: str | None = None) -> dict[str, Any]:
    content = content or base
    resources: list[dict[str, Any]] = [
        {
            "@id": f"{base}/api/v2/package",
            "@type": "PackagePublish/2.0.0",
            "comment": "Push, delete (unlist)",
        },
        {
            "@id": f"{content}/v3/flatcontainer/",
            "@type": "PackageBaseAddress/3.0.0",
            "comment": "Package content",
        },
    ]
    resources += [
        {"@id": f"{base}/v3/search", "@type": f"SearchQueryService{suffix}", "comment": "Search"}
        for suffix in _SEARCH
    ]
    resources += [
        {
            "@id": f"{base}/v3/autocomplete",
            "@type": f"SearchAutocompleteService{suffix}",
            "comment": "Autocomplete",
        }
        for suffix in _SEARCH
    ]
    resources += [
        {
            "@id": f"{content}/v3/registration/",
            "@type": f"RegistrationsBaseUrl{suffix}",
            "comment": "Metadata of SemVer 1.0.0 packages",
        }
        for suffix in _REGISTRATION_SEMVER1
    ]
    resources += [
        {
            "@id": f"{content}/v3/registration-semver2/",
            "@type": "RegistrationsBaseUrl/3.6.0",
            "comment": "Metadata of all packages, including SemVer 2.0.0",
        },
        {
            "@id": f"{content}/v3/registration-semver2/",
            "@type": "RegistrationsBaseUrl/Versioned",
            "clientVersion": "4.3.0-alpha",
            "comment": "Metadata of all packages, including SemVer 2.0.0",
        },
        {
            "@id": f"{content}/v3/flatcontainer/{{lower_id}}/{{lower_version}}/readme",
            "@type": "ReadmeUriTemplate/6.13.0",
            "comment": "README of a package version",
        },
        {"@id": f"{base}/api/v2", "@type": "LegacyGallery/2.0.0", "comment": "V2 feed, for nuget list"},
        {
            "@id": f"{base}/packages/{{id}}/{{version}}",
            "@type": "PackageDetailsUriTemplate/5.1.0",
            "comment": "Package details page",
        },
    ]
    # Without it, Visual Studio's "Report abuse" link opens nuget.org's page for the id (and so tells
    # nuget.org a private package's name): this feed's own package page, which names the owners, instead.
    resources += [
        {
            "@id": f"{base}/packages/{{id}}/{{version}}",
            "@type": f"ReportAbuseUriTemplate{suffix}",
            "comment": "Where to report a package: its page, which names its owners",
        }
        for suffix in ("/3.0.0", "/3.0.0-beta", "/3.0.0-rc")
    ]
    return {"version": "3.0.0", "resources": resources}
