"""A task started by `pfd-launch` dies with its launcher, however the launcher dies.

`pfd-launch` starts every task in a session of its own (so that a Ctrl-C in
the terminal reaches the tasks only through the launcher, which stops them
in order).  The price: a launcher killed outright (SIGKILL, the OOM killer,
a crash) cannot stop them, and they would serve forever, reparented to init.
So the launcher names itself in ``PFD_LAUNCHER_PID`` and each task, first
thing, asks Linux for a signal when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGTERM)``), then checks that the parent is still
that launcher: one that died before the request was made sends nothing.

The signal comes when the parent *thread* that forked the task exits, not
the process; `launch.local.LocalCluster` starts every task from its main
thread, which lives as long as the launcher does.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

ENV = "PFD_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_launcher(environ=os.environ) -> bool:
    """Arms the parent-death signal if a launcher started this process; returns whether it is armed.

    Without ``PFD_LAUNCHER_PID`` (pfd-train by hand, docker-compose) it does
    nothing.  When the launcher is already gone it exits at once (status
    143, as SIGTERM would have ended it).  Off Linux nothing is armed: the
    launcher's own SIGTERM/SIGHUP/SIGINT handling still stops the tasks.
    """
    raw = environ.get(ENV, "").strip()
    if not raw:
        return False
    try:
        launcher = int(raw)
    except ValueError:
        print(f"pfd-train: warning: {ENV}={raw!r} is not a pid; not watching the launcher", file=sys.stderr)
        return False
    armed = _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != launcher:  # the launcher died before the request: nobody will signal us
        print(f"pfd-train: the launcher (pid {launcher}) is gone; exiting", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    return armed


def _set_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
