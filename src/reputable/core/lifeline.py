"""No child outlives `serve`, even when `serve` itself is SIGKILLed.

`serve` names itself in the environment (``adopt_children``) before it starts children (DNS
workers, the `policy run` and `snapshot build` commands); each child calls ``follow_parent``
first thing. On Linux the kernel then sends the child SIGTERM the moment its parent dies
(``prctl(PR_SET_PDEATHSIG)``, which survives nothing but a parent's death: SIGKILL, OOM, a
crash). As a fallback (another OS, a prctl that failed, or a child that changed its user
afterwards - a DNS worker after binding port 53 - for which the kernel clears the setting) a
daemon thread looks at the parent pid every ``CHECK_EVERY`` seconds and ends the process the
same way. A child whose
parent is already gone when it starts ends at once.

A child that does not get the variable (a command an operator runs) follows nobody. The
variable is passed on with the child's own pid, so a grandchild that calls ``follow_parent``
follows the child, not `serve`; a process that finds the variable naming a live process other
than its parent (started through a shell from a sink, say) leaves it alone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Final

#: The environment variable naming the process a child must not outlive.
PARENT_ENV: Final = "REPUTABLE_SUPERVISOR_PID"
#: Seconds between two looks at the parent pid (the fallback to PR_SET_PDEATHSIG).
CHECK_EVERY: Final = 0.25
#: Seconds a child gets to end after its own SIGTERM before it exits hard.
GRACE: Final = 1.0
PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


def adopt_children() -> None:
    """Name this process as the one every child started from now on must not outlive."""
    os.environ[PARENT_ENV] = str(os.getpid())


def set_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send *sig* to this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else (serve dropped its privileges)
    return True


def _end() -> None:
    """End this process: SIGTERM to itself (its own clean stop), then a hard exit."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE)
    os._exit(128 + signal.SIGTERM)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(CHECK_EVERY)
    _end()


def follow_parent() -> bool:
    """End this process when the parent named by ``PARENT_ENV`` dies; True if following it.

    Call it first thing in a child's entry point. No-op without the variable.
    """
    value = os.environ.get(PARENT_ENV, "")
    if not value.isdigit():
        return False
    parent = int(value)
    os.environ[PARENT_ENV] = str(os.getpid())  # our own children follow us
    if os.getppid() != parent:
        if _alive(parent):
            return False  # started by something in between: not ours to follow
        _end()  # the parent died before we could ask to follow it
    set_death_signal()
    if os.getppid() != parent:  # it died between the check and the prctl
        _end()
    threading.Thread(target=_watch, args=(parent,), name="lifeline", daemon=True).start()
    return True
