"""How work is distributed, kept apart from what the work is (video2dataset style).

`map_unordered(fn, items)` yields fn(item) results as they finish, with joblib processes
(default: all cores) or a Dask cluster (an existing scheduler address, or a LocalCluster on
loopback). fn must be picklable (a module-level function or a functools.partial of one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from momu_data.optional import import_optional


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def map_unordered(
    fn: Callable, items: Iterable, n_jobs: int = -1, backend: str = "joblib", scheduler: str | None = None
) -> Iterator:
    items = list(items)
    if not items:
        return
    n_jobs = default_jobs() if n_jobs in (-1, 0, None) else n_jobs
    if backend == "joblib":
        if n_jobs == 1 or len(items) == 1:
            # In-process: no worker start-up cost, and exceptions keep their tracebacks.
            for x in items:
                yield fn(x)
            return
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=min(n_jobs, len(items)), return_as="generator_unordered")(
            delayed(fn)(x) for x in items
        )
    elif backend == "dask":
        distributed = import_optional("distributed", purpose="--backend dask")
        Client, LocalCluster, as_completed = distributed.Client, distributed.LocalCluster, distributed.as_completed

        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=min(n_jobs, len(items)),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            futures = client.map(fn, items, pure=False)
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        raise ValueError(f"unknown backend {backend!r}: use joblib or dask")
