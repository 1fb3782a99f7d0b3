"""Look-alike package ids (typosquatting), compared as nuget.org does: by a skeleton of the id (pure).

The skeleton is NFKC-normalized and case-folded, without the separators '.', '-' and '_', with
characters that look alike in common fonts mapped to one of them. Two different ids with the same
skeleton (``Newtonsoft.Json``, ``Newtonsoft-Json``, ``NewtonSoft.J5on``, ``Newt0nsoft.Json``) would fool a
reader, so a new id may not take the skeleton of an id owned by someone else. Package ids are ASCII
(``nuspec.validate_id``): a look-alike outside ASCII is refused before it gets here.
"""

from __future__ import annotations

import functools
import unicodedata

_SEPARATORS = str.maketrans("", "", "._-")
_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s"})
_PAIRS = (("rn", "m"), ("vv", "w"))


@functools.lru_cache(maxsize=1 << 12)  # pure; a reservation check computes it for each start of an id
def skeleton(package_id: str) -> str:
    text = unicodedata.normalize("NFKC", package_id).casefold().translate(_SEPARATORS)
    for pair, single in _PAIRS:
        text = text.replace(pair, single)
    return text.translate(_LOOKALIKES)
