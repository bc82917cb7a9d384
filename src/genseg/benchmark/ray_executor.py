"""The benchmark grid on Ray: every run one Ray task with declared CPUs and GPUs (``genseg[ray]``).

On one machine, ``genseg benchmark --ray`` starts a local Ray instance itself. On a cluster, start
Ray on every node (``ray start --head`` on one, ``ray start --address HEAD:6379`` on the others),
put the repository, the data and the out folder on a file system every node sees at the same
path, and pass ``--address HEAD:6379``; with ``--gpus-per-run 1`` Ray places one run per GPU.
Rows stream into ``runs.csv`` on the machine that started the benchmark as tasks finish; a killed
benchmark resumes like a local one (finished runs are skipped, half-finished ones resume).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from genseg.benchmark.runner import RunTask, execute_run, failed_row
from genseg.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class RayExecutor:
    """Runs as Ray tasks.

    Args:
        address: an existing Ray cluster (``HOST:6379``); None starts a local instance.
        cpus_per_run: CPUs Ray reserves for each run; also its torch threads unless the
            benchmark sets ``threads``.
        gpus_per_run: GPUs Ray reserves for each run (1: one run per GPU; 0 on CPU machines).
    """

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def execute(self, tasks: list[RunTask]) -> Iterator[tuple[RunTask, list[dict[str, Any]]]]:
        try:
            import ray
        except ModuleNotFoundError:
            raise ConfigError("--ray needs Ray: pip install 'genseg[ray]'") from None
        if not tasks:
            return
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        # max_calls=1: a fresh worker process per run, so its recorded peak memory is its own.
        remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_calls=1)(execute_run)
        threads = max(1, int(self.cpus_per_run))
        futures = {remote.remote(RunTask(t.run, t.run_dir, t.pending, t.threads or threads)): t for t in tasks}
        log.info("submitted %d runs to Ray (%g CPUs, %g GPUs each); Ray has %s", len(tasks), self.cpus_per_run,
                 self.gpus_per_run, ray.cluster_resources())
        while futures:
            (done,), _ = ray.wait(list(futures), num_returns=1)
            task = futures.pop(done)
            try:
                rows = ray.get(done)
            except ray.exceptions.RayError as error:  # the worker died (e.g. killed for memory)
                message = str(error).strip().splitlines()
                rows = [failed_row(task.run, f"Ray task failed: {message[0] if message else type(error).__name__}")]
            yield task, rows
