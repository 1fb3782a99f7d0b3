"""How stored package files are served so that none can act as a page of the site.

Anyone with a push key chooses the bytes of a nuspec, a readme, a license or an icon. Served from the
site's own origin as a type a browser renders (XML, HTML, SVG), a script in them would run with the
visitor's session cookie: a nuspec with an XHTML-namespaced ``<script>`` could read a page's CSRF token
and create an API key. So every package file and document goes out with ``nosniff`` and a
Content-Security-Policy that allows nothing and sandboxes the document, and with a type no browser runs
script in: the nuspec as a download, the readme and license as plain text, an icon only as the PNG or
JPEG its bytes say it is (pushes accept no other icon), anything else as a download. The headers are
computed once per stored blob (``readpath`` keeps them with the body).
"""

from __future__ import annotations

from nugat.nuspec import image_type

Headers = list[tuple[bytes, bytes]]

# On every stored file and document, and on the read path's own errors.
CONTENT_SECURITY_POLICY = b"default-src 'none'; sandbox"
LOCKED_DOWN: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
]
JSON_TYPE = b"application/json; charset=utf-8"
TEXT_TYPE = b"text/plain; charset=utf-8"
BINARY_TYPE = b"application/octet-stream"


def _download(key: str) -> Headers:
    name = key.rpartition("/")[2]  # a storage key's segment: [a-z0-9_.+-] only, safe between quotes
    return [
        (b"content-type", BINARY_TYPE),
        (b"content-disposition", f'attachment; filename="{name}"'.encode()),
    ]


def file_headers(key: str, head: bytes) -> Headers:
    """The content type and the headers that keep the file stored at ``key`` from running as a page;
    ``head``: the file's first bytes (an icon is served as the image they show, else as a download)."""
    if key.endswith(".json"):
        kind = [(b"content-type", JSON_TYPE)]
    elif key.endswith(".nupkg"):
        kind = [(b"content-type", BINARY_TYPE)]
    elif key.endswith(("/readme", "/license")):
        kind = [(b"content-type", TEXT_TYPE)]
    elif key.endswith("/icon") and (image := image_type(head)) is not None:
        kind = [(b"content-type", image.encode())]
    else:  # the nuspec, an icon stored before icons were checked, anything else
        kind = _download(key)
    return [*kind, *LOCKED_DOWN]
