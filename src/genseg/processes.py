"""Work side by side on this machine: each item in a fresh (spawned) process, answers as they end.

The benchmark's :class:`~genseg.benchmark.LocalExecutor` and a fold set's ``--workers`` both run
here. A fresh process per item means a crash or an out-of-memory kill ends that item only, and
its peak memory is its own. Each item's ``target`` sends one answer on its pipe; a process that
ends without one is reported as :class:`ProcessDied`. Stopped early (an exception, Ctrl-C, SIGTERM
via the CLI), every process still running is terminated, so none goes on writing its folder.

Example:
    >>> for item, answer in run_in_processes(["a", "b"], send_upper, workers=2):  # doctest: +SKIP
    ...     print(item, answer)
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from genseg.errors import ConfigError

log = logging.getLogger(__name__)

Item = TypeVar("Item")


@dataclass(frozen=True)
class ProcessDied:
    """The answer of an item whose process ended without sending one."""

    how: str
    """``killed by signal 9`` or ``ended with status 1``."""


def run_in_processes(items: Sequence[Item], target: Callable[[Item, Connection], None], workers: int, *,
                     on_start: Callable[[Item], None] | None = None) -> Iterator[tuple[Item, Any]]:
    """Run ``target(item, sender)`` for every item, ``workers`` at a time, each in its own process.

    Args:
        items: picklable work items, started in order.
        target: a module-level function (spawned processes import it) that sends one answer.
        workers: processes at once.
        on_start: called with each item as its process starts (e.g. to log it).

    Yields:
        Each item with its answer, or a :class:`ProcessDied`, in the order they finish.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
    waiting = list(items)
    running: dict[Any, tuple[multiprocessing.process.BaseProcess, Connection, Item]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                item = waiting.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=target, args=(item, sender))
                process.start()
                sender.close()
                if on_start is not None:
                    on_start(item)
                running[process.sentinel] = (process, receiver, item)
            for sentinel in wait(list(running)):
                process, receiver, item = running.pop(sentinel)
                process.join()
                try:
                    answer = receiver.recv()
                except EOFError:  # the process ended without sending its answer
                    exitcode = process.exitcode or 0
                    answer = ProcessDied(f"killed by signal {-exitcode}" if exitcode < 0 else
                                         f"ended with status {exitcode}")
                receiver.close()
                yield item, answer
    finally:
        for process, receiver, _ in running.values():
            process.terminate()
            process.join()
            receiver.close()
