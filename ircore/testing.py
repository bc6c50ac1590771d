"""pytest plugin (loaded with ``-p ircore.testing`` from pyproject): marks the test run
as a local run before Django settings are imported, so it can use a generated key."""

import os

os.environ.setdefault("IRCORE_LOCAL_RUN", "1")
