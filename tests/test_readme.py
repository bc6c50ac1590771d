"""The README's configuration reference stays complete: every environment variable
that ircore/settings.py reads is documented there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_from_the_environment_is_in_the_readme():
    source = (ROOT / "ircore" / "settings.py").read_text()
    names = set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    assert {"DATABASE_URL", "SECRET_KEY", "PUBLIC_URL", "REDIS_URL"} <= names
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"document these in README.md, Configuration: {missing}"


def test_readme_documents_the_procfile_processes():
    readme = (ROOT / "README.md").read_text()
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            process = line.split(":", 1)[0]
            assert f"`{process}`" in readme, process
