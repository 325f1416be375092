"""Ending a process that ran the Temporal SDK, without the interpreter's finalization.

The SDK's native (Rust) threads may still call into Python a moment after the worker or
the client is done: forwarding a log line, handing over a metric. If that happens while
the interpreter finalizes, CPython aborts (``Fatal Python error: PyGILState_Release``,
SIGABRT) and the process reports -6 instead of its exit status. Once everything has
stopped there is nothing left for finalization to do, so the process flushes its logs and
standard streams and ends at once, as Go programs and client-go's controllers do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_now(status: int) -> NoReturn:
    """Flush logs and stdio, then end the process with ``status``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
