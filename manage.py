#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ircore.settings")
    if sys.argv[1:2] == ["makemigrations"]:
        # A developer command that never serves anyone: it may use the local generated
        # key instead of refusing to start like a production process without SECRET_KEY.
        os.environ.setdefault("IRCORE_LOCAL_RUN", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
