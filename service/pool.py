"""The process pool for CPU-bound steps (quality checks, the offline generator, exports), tied to
the life of the service that owns it.

forkserver, not fork: a worker forked from the service would inherit its open sockets (and keep
connections the service closed half-open until the worker exits).

A worker outlives a service killed with SIGKILL unless it watches for that itself, and while one
lives the fork server and the resource tracker live too (each waits for the last holder of its pipe).
So every worker opens a pidfd on the service and exits the moment it becomes readable (the service
ended): no polling, and no risk of a reused pid.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import select
import threading
from concurrent.futures import ProcessPoolExecutor


def make_pool(size: int) -> ProcessPoolExecutor:
    """A forkserver pool of ``size`` workers that exit when this process ends, however it ends."""
    return ProcessPoolExecutor(
        max_workers=size,
        mp_context=mp.get_context("forkserver"),
        initializer=exit_with,
        initargs=(os.getpid(),),
    )


def exit_with(pid: int) -> None:
    """Worker initializer: exit as soon as process ``pid`` (the service) has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(0)
    threading.Thread(target=_exit_when_readable, args=(fd,), name="exit-with-service", daemon=True).start()


def _exit_when_readable(fd: int) -> None:
    select.select([fd], [], [])  # a pidfd becomes readable when its process terminates
    os._exit(0)
