"""Every page form is read here, bounded before anything is parsed.

No page takes a file, and the largest form (an API key with a checkbox per package) is a few KiB: a body
over ``MAX_FORM_BYTES`` is refused with 413, from its Content-Length before a byte is read or, chunked, as
soon as the count passes the limit; a multipart body (the only way to send a file) or any other type is
refused with 400 unread; more fields than the page takes is 400; a body not received within
``FORM_TIMEOUT`` gets 408.
The body is held in memory (at most 64 KiB) and parsed by the standard library's ``parse_qsl``; nothing
is ever written to disk. Starlette's ``request.form()`` is never called: it would spool a file part to a
temp file and read fields without limit before the CSRF check could refuse the form.
"""

from __future__ import annotations

import asyncio
import random
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request

from nugat.services import ServiceError
from nugat.upload import PayloadTooLarge, UploadTimeout

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 32  # a page's fields, its CSRF token included
FORM_TIMEOUT = 10.0  # seconds for the whole form (64 KiB in 10 s: 6.4 KB/s), plus up to half of it:
# the jitter spreads the ends of forms that began together (an attacker's burst) over five seconds.
URLENCODED = "application/x-www-form-urlencoded"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def check_declared(request: Request) -> None:
    """Refuse, before reading the body, a form of another type or declared over the limit."""
    media = _media_type(request)
    if media.startswith("multipart/"):
        raise ServiceError("Pages take no files: send the form as application/x-www-form-urlencoded")
    if media not in (URLENCODED, ""):
        raise ServiceError(f"A page form is sent as {URLENCODED}")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise PayloadTooLarge(f"A page form is at most {MAX_FORM_BYTES // 1024} KiB")


async def read_body(request: Request) -> bytes:
    """The body, counted as it arrives (a chunked body has no declared size), within ``FORM_TIMEOUT``.

    One deadline for the whole body, not one per chunk: a client trickling a byte at a time costs the
    server as little as it can (a timer per chunk tripled that cost).
    """
    body = bytearray()
    try:
        async with asyncio.timeout(FORM_TIMEOUT * (1 + random.random() / 2)):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    raise PayloadTooLarge(f"A page form is at most {MAX_FORM_BYTES // 1024} KiB")
    except TimeoutError:
        raise UploadTimeout(f"The form took too long: send it within {FORM_TIMEOUT:g} seconds") from None
    except ClientDisconnect:
        raise ServiceError("The form was not received: the connection closed") from None
    return bytes(body)


def parse(body: bytes, max_fields: int) -> FormData:
    """The fields of a urlencoded body (names and values percent-decoded as UTF-8, as browsers send)."""
    fields: list[tuple[str, str | UploadFile]] = []
    try:
        fields.extend(parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=max_fields))
    except ValueError:
        raise ServiceError(f"A page form has at most {max_fields} fields") from None
    return FormData(fields)


async def read_form(request: Request, max_fields: int = MAX_FORM_FIELDS) -> FormData:
    """The posted page form, or a ServiceError (400, 408, 413) saying why it was refused unparsed."""
    check_declared(request)
    return parse(await read_body(request), max_fields)
