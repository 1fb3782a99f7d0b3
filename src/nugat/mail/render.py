"""A mail's subject, text and HTML bodies from its templates (``templates/<kind>.txt`` and ``.html``).

The text template's first line is the subject; both bodies get the same context. No secret ever goes
into one: links carry single-use tokens whose hashes alone are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(kind: str, context: dict[str, Any]) -> Rendered:
    text = _env.get_template(f"{kind}.txt").render(context)
    subject, _, body = text.partition("\n")
    html = _env.get_template(f"{kind}.html").render(context)
    return Rendered(" ".join(subject.split())[:300], body.lstrip("\n"), html)


def kinds() -> list[str]:
    """Every kind of mail there is a template for."""
    return sorted(p.stem for p in TEMPLATES.glob("*.txt") if not p.stem.startswith("_"))
