"""Scoring many (clean, signal) tasks, serially or in a process pool.

Workers are forked from a fork server that was started with the BLAS/OpenMP thread limits
in its environment and has numpy, pesq and pystoi loaded: one thread per worker, no
oversubscription (a fork of a process whose numpy already runs two threads gains only
1.1x on 2 cores), and no import cost per worker. Each task's result depends only on its
input, so any --jobs gives the same numbers. --jobs 1 runs in one worker too: ESTOI's
batched matmul differs in the last bit between a 1-thread and a 2-thread BLAS, and the
numbers must not depend on --jobs.

Callers that are scripts need the usual `if __name__ == "__main__":` guard, since a
fork-server worker imports the main module.
"""

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from kjob.errors import KjobError

THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def single_thread_environment():
    """Thread limits in os.environ while processes are started, then the old values back."""
    saved = {name: os.environ.get(name) for name in THREAD_LIMITS}
    os.environ.update({name: "1" for name in THREAD_LIMITS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["speechscore.worker"])
    return context


def _score_task(task: tuple) -> tuple:
    # Imported here, not at the top: the parent never needs pesq or pystoi itself, and
    # in a worker the fork server has already loaded them.
    from speechscore.worker import score_task

    return score_task(task)


def score_tasks(tasks: list[tuple], jobs: int, progress=None, label: str = "scoring") -> dict:
    """{key: {metric: (value, reason)}} for tasks (key, clean, signal, metrics)."""
    results = {}
    # Longest first, so that no long file starts last while the other workers idle.
    ordered = sorted(tasks, key=lambda t: -t[1].shape[0])
    jobs = max(1, min(jobs, len(ordered)))
    if not ordered:
        return results
    pool = ProcessPoolExecutor(jobs, mp_context=_context())
    try:
        # Workers start as tasks are submitted: keep the limits in place until then.
        with single_thread_environment():
            futures = [pool.submit(_score_task, task) for task in ordered]
        for done, future in enumerate(as_completed(futures), start=1):
            key, scores = future.result()
            results[key] = scores
            if progress:
                progress(label, done, len(ordered))
    except BrokenProcessPool:
        raise KjobError(f"a scoring process died (a crash inside the pesq or pystoi extension?); "
                        f"{len(ordered) - len(results)} of {len(ordered)} signals were not scored") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results
