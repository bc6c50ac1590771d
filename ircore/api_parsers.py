"""The API's JSON parser: DRF's own, refusing text no database column can hold."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from ircore.text import unstorable_path


class StorableJSONParser(JSONParser):
    """A NUL character (PostgreSQL refuses it in text and jsonb) or an unpaired surrogate
    (UTF-8 cannot encode it) anywhere in the body is a 400 naming where it is. DRF's
    CharField already refuses NUL; a JSON field (labels, options, ...) passed it to the
    database, which answered 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        where = unstorable_path(data)
        if where is not None:
            raise ParseError(f"JSON parse error - {where or 'the body'} contains a NUL character "
                             "(\\u0000) or an unpaired surrogate, which cannot be stored.")
        return data
