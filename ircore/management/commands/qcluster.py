"""``manage.py qcluster``: django-q2's task cluster (the Procfile's ``worker``), run so that
a stop signal sent to its whole process group stops it in order.

Process managers stop a service by signalling its process group: honcho (``make run``)
sends SIGTERM with killpg, a terminal's Ctrl-C reaches every foreground process.
django-q2's inner processes (its sentinel and the workers, pusher and monitor under it)
take SIGTERM's default action and die on the spot, the sentinel possibly holding a lock
the cluster's own stop then waits for: the cluster hung until it was SIGKILLed (5 s
later under honcho), cutting off a task in progress.

So, started from the command line on Linux, this command runs the real cluster as its
child in a session of its own, out of reach of signals to our group, and passes it one
SIGTERM when it gets SIGTERM or SIGINT: the cluster stops as django-q2 means it to (the
pusher first, each worker after its current task, the monitor last). If this process is
killed outright, the kernel sends the cluster SIGTERM (PR_SET_PDEATHSIG), so it never
outlives its supervisor. The exit status is the cluster's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from types import FrameType

from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

# Set in the supervised cluster's environment: there the command is django-q2's own.
SUPERVISED_ENV = "IRCORE_QCLUSTER_SUPERVISED"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Command(DjangoQClusterCommand):
    help = "Start the django-q2 task cluster; SIGTERM or SIGINT to its process group stops it in order."

    def run_from_argv(self, argv: list[str]) -> None:
        # Only a command-line start is supervised: call_command() runs django-q2's as is.
        if os.environ.get(SUPERVISED_ENV) or not sys.platform.startswith("linux"):
            super().run_from_argv(argv)
            return
        sys.exit(cluster_supervise([sys.executable, *argv]))


def cluster_supervise(command: list[str]) -> int:
    """Run ``command`` (the cluster) in its own session and forward a stop to it; return
    its exit status as a shell would (128 + signal number if a signal ended it)."""
    parent = os.getpid()

    def die_with_parent() -> None:  # in the child, before exec
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    child = subprocess.Popen(command, env={**os.environ, SUPERVISED_ENV: "1"}, start_new_session=True,
                             preexec_fn=die_with_parent)

    def stop(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = child.wait()
    return 128 - status if status < 0 else status
