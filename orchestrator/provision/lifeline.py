"""A child process that the kernel stops when its parent dies, even by SIGKILL.

A front end (``comfy-orch up``, a test session) starts servers in sessions of their own,
so stopping one by PID takes down what it spawned; that also means a SIGKILL of the front
end (a crash, the OOM killer) would leave them running, holding their ports. The shim
below runs first in the child's own interpreter: it asks the kernel for a signal when the
parent dies (``prctl(PR_SET_PDEATHSIG)``, which survives the exec), exits if the parent is
already gone, then becomes the real program. A shim rather than a ``preexec_fn``, which is
unsafe in a parent with threads. Linux only; elsewhere the argv is returned unchanged.

The kernel sends the signal when the *thread* that started the child ends, so only a
thread that lives as long as the process (the main thread) may use this.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

SHIM = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, int(sys.argv[1]), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[2]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def tied_to_parent(argv: Sequence[str], *, python: str | None = None,
                   on_death: signal.Signals = signal.SIGKILL) -> list[str]:
    """``argv`` behind the shim: the child gets ``on_death`` when this process dies.

    ``python`` runs the shim (the child's own interpreter by default this one's); the
    program in ``argv[0]`` must be a path, as ``execv`` does not search ``PATH``.
    """
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [python or sys.executable, "-c", SHIM, str(int(on_death)), str(os.getpid()),
            *argv]
