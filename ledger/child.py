"""What a command's helper process (an import's writer, a rebuild's prover) does to
never outlive the command."""

from __future__ import annotations

import os
import signal
import sys


def die_with_parent(parent: int) -> None:
    """Be killed with the parent process `parent` (Linux: PR_SET_PDEATHSIG), so a killed
    command leaves no helper behind holding the store's lock or a connection; exit now if
    the parent is already gone. Elsewhere a helper ends when its pipe from the parent does."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
