"""Settings come only from the environment; a production process needs SECRET_KEY."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP = "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))"


def run(code_or_args, tmp_path, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in {"SECRET_KEY", "IRCORE_LOCAL_RUN", "DEBUG", "DJANGO_SETTINGS_MODULE"}}
    base.update(IRCORE_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                DJANGO_SETTINGS_MODULE="ircore.settings")
    base.update(env)
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=120)


def test_production_run_without_secret_key_refuses_with_a_clear_message(tmp_path):
    result = run(SETUP, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_secret_key_from_the_environment(tmp_path):
    result = run(SETUP, tmp_path, SECRET_KEY="k" * 60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "60"
    assert not (tmp_path / "var" / "secret_key").exists()


def test_local_run_generates_and_keeps_a_private_key(tmp_path):
    first = run(SETUP, tmp_path, IRCORE_LOCAL_RUN="1")
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0
    key = key_file.read_text()
    assert run(SETUP, tmp_path, DEBUG="1").returncode == 0
    assert key_file.read_text() == key  # kept across runs


def test_bad_boolean_and_database_url_are_refused(tmp_path):
    result = run(SETUP, tmp_path, SECRET_KEY="x" * 60, DEBUG="maybe")
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr
    result = run(SETUP, tmp_path, SECRET_KEY="x" * 60, DATABASE_URL="mysql://db/x")
    assert result.returncode != 0 and "DATABASE_URL scheme 'mysql' is not supported" in result.stderr


def test_makemigrations_check_runs_without_secret_key(tmp_path):
    result = run(["manage.py", "makemigrations", "--check", "--dry-run"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_postgres_url_options():
    """DATABASE_URL's own options become Django's connection settings, with the
    defaults the alert queue is measured with (bench/profile_ingest.py)."""
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    from ircore.env import database_from_url

    default = database_from_url("postgres://u:p@db:5433/ircore")
    assert (default["NAME"], default["HOST"], default["PORT"]) == ("ircore", "db", "5433")
    assert (default["CONN_MAX_AGE"], default["CONN_HEALTH_CHECKS"]) == (60, False)
    assert default["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}
    tuned = database_from_url("postgres://u@db/ircore?conn_max_age=0&conn_health_checks=yes"
                              "&server_side_binding=off&prepare_threshold=none&sslmode=require")
    assert (tuned["CONN_MAX_AGE"], tuned["CONN_HEALTH_CHECKS"]) == (0, True)
    assert tuned["OPTIONS"] == {"server_side_binding": False, "prepare_threshold": None, "sslmode": "require"}
    with pytest.raises(ImproperlyConfigured, match="not a boolean"):
        database_from_url("postgres://u@db/ircore?conn_health_checks=maybe")
    with pytest.raises(ImproperlyConfigured, match="prepare_threshold='soon'"):
        database_from_url("postgres://u@db/ircore?prepare_threshold=soon")
