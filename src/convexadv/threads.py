"""numpy's BLAS kept to one thread inside the package's loops of small products (GD training, the fast solver).

numpy's OpenBLAS (and torch's OpenMP) keep a pool of one thread per core, and each pool's threads
spin-wait for a while after every call. Where a loop runs many small products, threads cost more than
they give, and where it alternates numpy with torch operations (the fast solver: the float64 objective
of every iterate between torch Newton systems) the two pools take the cores from each other. Measured on
the 2-core CPU machine (27 Nov 2026), with neither pool limited by the environment: GD-PGD training on
the CIFAR pair (n = 600, width 72; then a torch model, numpy attacks) 59 s with both pools, 30 s with
numpy's BLAS on one thread; the fast solver on a Gaussian program with 8 patterns 16-18 s -> 11-12 s.
GD training is numpy alone since 28 Nov 2026; its products stay small (a mini-batch of 60 x 147 times
147 x 72), and a second BLAS thread gained 5-10 % alone (10 epochs of GD-PGD on the CIFAR pair: 1.07-1.14 s
-> 1.01-1.03 s on 2 cores), less than it costs wherever another job or thread wants the core.

The limit is process-wide while it lasts (``threadpoolctl``): numpy run by other threads of the
caller during such a call is single-threaded too. It is set only for calls from the main thread:
OpenBLAS has one process-wide setting, which threadpoolctl lets one thread at a time change, and
overlapping calls from worker threads (measured: A starts, B starts, A ends, B ends) would leave the
process at one BLAS thread for good. Calls from other threads run as they are. The pipeline's jobs
are single-threaded anyway (Snakemake sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS to the job's threads).
"""

from __future__ import annotations

import functools
import threading

from threadpoolctl import threadpool_limits


def numpy_blas_single_threaded(function):
    """``function`` run with numpy's (and scipy's) BLAS limited to one thread, restored afterwards, when
    called from the main thread."""

    @functools.wraps(function)
    def limited(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return function(*args, **kwargs)
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited
