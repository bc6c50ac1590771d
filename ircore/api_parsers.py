"""The API's JSON parser: DRF's own, refusing text no database column can hold."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from ircore.text import text_storable


class StorableJSONParser(JSONParser):
    """A NUL character (PostgreSQL refuses it in text and jsonb) or an unpaired surrogate
    (UTF-8 cannot encode it) anywhere in the body is a 400 naming where it is. DRF's
    CharField already refuses NUL; a JSON field (labels, options, ...) passed it to the
    database, which answered 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        where = _unstorable_at(data, "")
        if where is not None:
            raise ParseError(f"JSON parse error - {where or 'the body'} contains a NUL character "
                             "(\\u0000) or an unpaired surrogate, which cannot be stored.")
        return data


def _unstorable_at(value: Any, path: str) -> str | None:
    """The path of the first string (value or key) that text_storable would change."""
    if isinstance(value, str):
        return path if text_storable(value) is not value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{text_storable(str(key))}" if path else text_storable(str(key))
            if isinstance(key, str) and text_storable(key) is not key:
                return here
            found = _unstorable_at(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
