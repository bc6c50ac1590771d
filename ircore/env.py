"""Small typed readers for configuration from environment variables.

Settings are configured only through the environment (DESIGN.md §5); these helpers keep
the parsing rules in one place so every variable behaves the same way.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def url_query_defaults(url: str, **defaults: object) -> str:
    """``url`` with ``defaults`` added to its query string where the URL does not set them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in defaults.items():
        query.setdefault(key, str(value))
    return parts._replace(query=urlencode(query)).geturl()


def database_from_url(url: str) -> dict:
    """Turn ``sqlite:///path`` or ``postgres://user:pass@host:port/name?opt=v`` into a
    Django DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query))
    if scheme == "sqlite":
        path = unquote(parts.path)
        name = path[1:]  # sqlite:////abs/path -> /abs/path, sqlite:///rel -> rel
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name or ":memory:",
            "OPTIONS": sqlite_options(),
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        conn_max_age = int(options.pop("conn_max_age", "60"))
        # Off by default: the check is a round trip before every request's first query
        # (a fifth of an ingestion request's cost). Without it a connection that died
        # (database restart) fails one request per process, which Django then drops;
        # ingestion answers that request 503, so the sender retries.
        health_checks = _flag(options.pop("conn_health_checks", "false"))
        # Parameters bound by the server (psycopg 3): values travel apart from the
        # statement instead of being quoted into it in Python, which is several times
        # cheaper for the bulk inserts of ingestion (arrays of hundreds of values).
        # ?server_side_binding=false turns it off.
        options["server_side_binding"] = _flag(options.get("server_side_binding", "true"))
        # Prepared statements from a statement's 5th run on a connection: PostgreSQL then
        # skips parsing and planning it (a third of its CPU for the alert queue's
        # statements). ?prepare_threshold=none turns them off, for a pgbouncer older than
        # 1.21 in transaction pooling mode.
        value = options.get("prepare_threshold", "5")
        if value.lower() in ("", "none"):
            options["prepare_threshold"] = None
        elif value.isdigit():
            options["prepare_threshold"] = int(value)
        else:
            raise ImproperlyConfigured(
                f"DATABASE_URL option prepare_threshold={value!r}: use a number or none"
            )
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": health_checks,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:/// or postgres://"
    )


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"DATABASE_URL option {value!r} is not a boolean; use true or false")


def sqlite_options() -> dict:
    # WAL lets readers proceed while one writer commits; IMMEDIATE takes the write lock
    # at BEGIN so concurrent writers queue on busy_timeout instead of failing with
    # "database is locked" half-way through a transaction.
    return {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
