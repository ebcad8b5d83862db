"""How work is distributed, kept apart from what the work is (video2dataset style).

`map_unordered(fn, items)` yields fn(item) results as they finish, with joblib processes
(default: all cores) or a Dask cluster (an existing scheduler address, or a LocalCluster on
loopback). fn must be picklable (a module-level function or a functools.partial of one).

Each worker of a local pool gets a thread budget, its share of the cores (cores // workers,
at least 1: one on a 2-core machine with 2 workers), before it runs fn (`limit_threads`): the
libraries' helper threads (the pose model's graph executor, the video decoder and scaler,
OpenCV, BLAS and OpenMP) would otherwise each start one thread per core in every worker, and
a worker's helpers would take the core another worker needs. A job run in this process
(1 worker, or 1 item) keeps the libraries' defaults: there they use cores nothing else does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from functools import partial

from momu_data.optional import import_optional

# The thread budget of a pool worker (set by limit_threads; read by media and mediapipe_pose).
THREADS_ENV = "MOMU_THREADS"
# Thread counts of the BLAS and OpenMP runtimes, for those a process loads later and its children.
NATIVE_THREADS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
_limited_to: int | None = None  # the budget limit_threads applied in this process


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def thread_budget() -> int | None:
    """How many threads each library may use in this process: a pool worker's budget
    (limit_threads), or None outside a pool (the libraries' own defaults)."""
    try:
        n = int(os.environ.get(THREADS_ENV, ""))
    except ValueError:
        return None
    return n if n > 0 else None


def limit_threads(n: int) -> None:
    """Give this process a budget of n threads per library: THREADS_ENV (the pose model's graph
    executor and the video decoder and scaler read it through thread_budget), OpenCV's pool,
    and BLAS / OpenMP (those loaded now through threadpoolctl; later ones and child processes
    through their environment variables)."""
    global _limited_to
    n = max(1, int(n))
    if _limited_to == n:
        return  # a worker's later jobs: already applied
    os.environ[THREADS_ENV] = str(n)
    for var in NATIVE_THREADS_ENV:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    try:
        import cv2
    except ImportError:  # a models-only install: nothing of OpenCV's to limit
        cv2 = None
    if cv2 is not None:
        cv2.setNumThreads(n)
    _limited_to = n


def _call_limited(fn: Callable, threads: int, item):
    limit_threads(threads)
    return fn(item)


def map_unordered(
    fn: Callable, items: Iterable, n_jobs: int = -1, backend: str = "joblib", scheduler: str | None = None
) -> Iterator:
    items = list(items)
    if not items:
        return
    n_jobs = default_jobs() if n_jobs in (-1, 0, None) else n_jobs
    workers = min(n_jobs, len(items))
    # A worker's share of this machine's cores (not known for a remote Dask scheduler's machines).
    limited = partial(_call_limited, fn, max(1, default_jobs() // workers))
    if backend == "joblib":
        if workers == 1:
            # In-process: no worker start-up cost, and exceptions keep their tracebacks.
            for x in items:
                yield fn(x)
            return
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=workers, return_as="generator_unordered")(delayed(limited)(x) for x in items)
    elif backend == "dask":
        distributed = import_optional("distributed", purpose="--backend dask")
        Client, LocalCluster, as_completed = distributed.Client, distributed.LocalCluster, distributed.as_completed

        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            futures = client.map(fn if scheduler else limited, items, pure=False)
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        raise ValueError(f"unknown backend {backend!r}: use joblib or dask")
