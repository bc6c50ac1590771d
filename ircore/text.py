"""Text as a database can hold it."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_storable(value: str) -> str:
    """``value`` with NUL characters (PostgreSQL's text refuses them) and unpaired
    surrogates (UTF-8 cannot encode them) replaced by U+FFFD; ``value`` itself when
    there are none. Input from outside (JSON escapes, mail headers and bodies) can carry
    both."""
    if not _UNSTORABLE.search(value):
        return value
    # Through UTF-16: surrogates that pair up become their character, the others U+FFFD.
    return value.replace("\x00", "\ufffd").encode("utf-16", "surrogatepass").decode("utf-16", "replace")
