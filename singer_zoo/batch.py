"""Run one function over many files so that a bad file never costs the others' results.

`run_batch(fn, items, workers=...)` calls `fn(item)` for every item, collects results in input
order, and records each `SingerZooError` as `failed[item] = "<path>: <problem>"` instead of
stopping; a `MemoryError` in one item is recorded the same way. Any other exception is a
bug and propagates.

`workers` is a count of threads (an int) or a `Workers(count, processes=True)`:
- threads (the default) suit any callable and start at once: libsndfile decoding,
  resampling, numpy, scipy.fft and TF release the GIL; ffmpeg decoding runs one thread at
  a time (`singer_zoo.decoders`), since PyAV holds the GIL for every frame. While a batch
  started from the main thread runs, BLAS libraries use one thread each (`threadpoolctl`);
- processes suit long jobs on AAC (DAMP's m4a). Each worker is a spawned Python process whose
  TensorFlow and BLAS run single-threaded on the CPU (no GPU memory taken from a training
  process), so workers neither wait for each other's GIL nor fight over thread pools: on
  two cores, 1.36x the throughput of two threads on m4a (PyAV holds the GIL), 1.0-1.1x
  on short real recordings, 0.8-0.9x on long FLAC and WAV files (docs/performance.md).
  Items go to them in chunks. Starting them costs about 5 s (each imports TensorFlow),
  once per process: the pool is kept for later batches with the same count. `fn` must be
  picklable by reference (a module-level function or a `functools.partial` of one), and a
  script that uses them needs Python's `if __name__ == "__main__":` guard (spawn imports
  it).

Each failure is logged as a warning the first time a process meets it and at DEBUG level
after that: a table experiment reads the same recordings for every row and fold, and
repeated its warnings row x fold times. `BatchResult.failed` always lists every failure.
"""
from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import pickle
import sys
import threading
from dataclasses import dataclass, field
from collections.abc import Callable, Hashable, Iterable

from threadpoolctl import threadpool_limits

from singer_zoo.errors import ConfigError, SingerZooError

log = logging.getLogger(__name__)
_reported: set[str] = set()  # failure messages already logged as warnings (module docstring)
_pool: cf.ProcessPoolExecutor | None = None  # kept between batches (start-up costs ~5 s)
_pool_size = 0
_pool_lock = threading.Lock()
CHUNK_ITEMS = 32  # most items sent to a worker process at once


@dataclass(frozen=True)
class Workers:
    """How a batch runs in parallel: `count` threads, or `count` processes (module docstring)."""

    count: int = 1
    processes: bool = False

    def __post_init__(self):
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"workers: count must be an integer >= 1, got {self.count!r}")
        if not isinstance(self.processes, bool):
            raise ConfigError(f"workers: processes must be true or false, got "
                              f"{self.processes!r}")

    @classmethod
    def of(cls, spec: int | Workers) -> Workers:
        return spec if isinstance(spec, Workers) else cls(spec)


@dataclass
class BatchResult:
    ok: dict = field(default_factory=dict)  # item -> result, in input order
    failed: dict = field(default_factory=dict)  # item -> error message

    def report(self) -> str:
        """One line per failed item, for logs and CLI output."""
        return "\n".join(f"skipped {msg}" for msg in self.failed.values())


def _init_process():
    """Worker process set-up, before any TF op: CPU only, one intra- and one inter-op TF
    thread, one BLAS thread."""
    import tensorflow as tf

    # after TF's import, which loads numpy's and scipy's BLAS if the parent's main module
    # (imported first by spawn) has not already
    threadpool_limits(1, user_api="blas")
    tf.config.set_visible_devices([], "GPU")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _one_blas_thread():
    """BLAS on one thread while batch threads share the cores: its own threads, spinning after
    each small product (the Mel projection of streaming extraction, librosa's), took the
    cores from the workers (docs/performance.md). Only from the main thread: threadpoolctl
    lets one thread at a time set OpenBLAS's process-wide count, and overlapping batches of
    several threads, each restoring what it found, could leave it at one thread for good."""
    if threading.current_thread() is threading.main_thread():
        return threadpool_limits(1, user_api="blas")
    return contextlib.nullcontext()


def _process_pool(count: int) -> cf.ProcessPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != count:
            if _pool is not None:
                _pool.shutdown()
            _pool = cf.ProcessPoolExecutor(count, multiprocessing.get_context("spawn"),
                                           initializer=_init_process)
            _pool_size = count
        return _pool


@atexit.register
def _close_pool() -> None:
    """Shut the kept pool down at exit while modules are intact: an executor collected
    during interpreter teardown prints an "Exception ignored" traceback."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown()
            _pool = None


def _discard_pool(pool: cf.ProcessPoolExecutor) -> None:
    global _pool
    pool.shutdown(wait=False, cancel_futures=True)
    with _pool_lock:
        if _pool is pool:
            _pool = None


def run_batch(fn: Callable, items: Iterable[Hashable], *, workers: int | Workers = 1,
              progress: bool = False, label: str = "files") -> BatchResult:
    workers = Workers.of(workers)
    items = list(items)
    bar = None
    if progress:
        from keras.utils import Progbar

        # a live bar on a terminal; one summary line in logs and pipes (no \r floods)
        bar = Progbar(len(items), unit_name=label, verbose=1 if sys.stdout.isatty() else 2)
    outcomes = {}

    def record(item, good, value):
        if not good:
            log.log(logging.DEBUG if value in _reported else logging.WARNING, "skipped %s", value)
            _reported.add(value)
        outcomes[item] = (good, value)
        if bar is not None:
            bar.add(1)

    if workers.processes:
        try:
            pickle.dumps(fn)
        except Exception as e:
            raise ConfigError(f"run_batch: worker processes need a picklable function (a "
                              f"module-level function or a functools.partial of one); "
                              f"{fn!r} is not: {e}") from None
        pool = _process_pool(workers.count)
        # items go in chunks: one round trip per item cost more than the work of a short file
        size = max(1, min(CHUNK_ITEMS, len(items) // (4 * workers.count)))
        try:
            _collect(pool, fn, [items[i:i + size] for i in range(0, len(items), size)], record)
        except cf.process.BrokenProcessPool as e:
            _discard_pool(pool)
            raise RuntimeError("run_batch: a worker process died (out of memory? a script "
                               "without the `if __name__ == \"__main__\":` guard?)") from e
    elif workers.count > 1:
        with _one_blas_thread(), cf.ThreadPoolExecutor(max_workers=workers.count) as pool:
            _collect(pool, fn, [[item] for item in items], record)
    else:
        for item in items:
            record(item, *_run_chunk(fn, [item])[0])
    result = BatchResult()
    for item in items:
        good, value = outcomes[item]
        (result.ok if good else result.failed)[item] = value
    return result


def _run_chunk(fn: Callable, chunk: list) -> list[tuple[bool, object]]:
    """`(True, fn(item))`, or `(False, "<path>: <problem>")` for a `SingerZooError` or a
    `MemoryError` (one huge item must not cost the others' results), per item (in the
    calling thread or worker process); any other exception propagates."""
    out = []
    for item in chunk:
        try:
            out.append((True, fn(item)))
        except SingerZooError as e:
            out.append((False, str(e)))
        except MemoryError as e:
            out.append((False, f"{item}: out of memory while processing it ({e or 'MemoryError'})"))
    return out


def _collect(pool: cf.Executor, fn: Callable, chunks: list[list], record: Callable) -> None:
    futures = {pool.submit(_run_chunk, fn, chunk): chunk for chunk in chunks}
    try:
        for fut in cf.as_completed(futures):
            for item, (good, value) in zip(futures[fut], fut.result()):
                record(item, good, value)
    except BaseException:  # a bug or Ctrl-C: the items not started yet are dropped
        for fut in futures:
            fut.cancel()
        raise
