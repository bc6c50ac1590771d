"""Text as a database can hold it."""

from __future__ import annotations

import math
import re
from typing import Any

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


def json_storable(value: Any) -> Any:
    """A JSON-like value (strings, dict keys, nested lists and dicts) with every text
    passed through ``text_storable`` and non-finite numbers (not JSON) as text;
    ``value`` itself when nothing needs replacing."""
    if isinstance(value, str):
        return text_storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        items = [(json_storable(k), json_storable(v)) for k, v in value.items()]
        if all(k2 is k and v2 is v for (k2, v2), (k, v) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list):
        fixed = [json_storable(v) for v in value]
        return value if all(a is b for a, b in zip(fixed, value, strict=True)) else fixed
    return value


def unstorable_path(value: Any, path: str = "") -> str | None:
    """Where in a JSON-like value (strings, dict keys, nested lists and dicts) the first
    text ``text_storable`` would change is: ``"labels.env"``, ``"items[2]"``, ``""`` for
    the value itself; None when everything can be stored as it is."""
    if isinstance(value, str):
        return path if text_storable(value) is not value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{text_storable(str(key))}" if path else text_storable(str(key))
            if isinstance(key, str) and text_storable(key) is not key:
                return here
            found = unstorable_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
