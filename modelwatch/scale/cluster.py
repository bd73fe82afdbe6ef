"""The Dask cluster of large batches: a scheduler from configuration, or a local cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelwatch.errors import ConfigError
from modelwatch.settings import ScaleSettings, scheduler_address

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = "10s"


def local_cluster_options(settings: ScaleSettings) -> dict[str, Any]:
    """Returns the distributed.LocalCluster keyword arguments of scale.* (worker processes, so
    GIL-bound work such as Great Expectations runs in parallel; no dashboard)."""
    return {
        "n_workers": settings.workers,
        "threads_per_worker": settings.threads_per_worker,
        "memory_limit": settings.worker_memory,
        "processes": True,
        "dashboard_address": None,
    }


@contextmanager
def dask_client(settings: ScaleSettings) -> Iterator[Any]:
    """Yields a distributed.Client: on the scheduler of MODELWATCH_DASK_SCHEDULER or
    scale.scheduler, else on a local cluster started here and closed on exit.

    Raises:
        ConfigError: the configured scheduler cannot be reached.
    """
    from distributed import Client, LocalCluster

    address = scheduler_address(settings)
    if address is not None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise ConfigError(
                f"scale.scheduler: cannot reach the Dask scheduler at {address} "
                f"within {CONNECT_TIMEOUT}: {exc}"
            ) from None
        with client:
            yield client
        return
    with LocalCluster(**local_cluster_options(settings)) as cluster, Client(cluster) as client:
        logger.info("local Dask cluster: %s", cluster)
        yield client
