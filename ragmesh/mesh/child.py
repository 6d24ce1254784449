"""Run a command that ends with its parent: ``python child.py PARENT_PID COMMAND...``.

On Linux it asks the kernel to send SIGTERM when the parent (the launcher, or a test run)
dies — the request survives exec — then execs COMMAND in its place, so a launcher killed
with SIGKILL still leaves no service or Envoy running. Stdlib only: it runs as a script.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    """Arrange the parent-death signal, check the parent is still there, exec."""
    parent, command = int(sys.argv[1]), sys.argv[2:]
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request was in place
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
