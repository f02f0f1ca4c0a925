"""run_batch on worker processes (`Workers(n, processes=True)`) and the typed errors that
cross them, and the BLAS threads of thread batches. Thread and sequential batches are
otherwise tested with the audio they read (test_audio.py)."""
import functools
import multiprocessing
import os
import pickle
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from singer_zoo import audio, batch, errors
from singer_zoo.batch import Workers, run_batch
from singer_zoo.errors import ConfigError

SR = 22050
PROCESSES = Workers(2, processes=True)


def _blas_threads(_=None):
    """The thread count of each process-wide BLAS library loaded in this process (numpy's and
    scipy's OpenBLAS; not faiss's, whose OpenMP-layer OpenBLAS counts threads per thread)."""
    return [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas" and lib.get("threading_layer") != "openmp"]


def _tf_settings(_, both_workers):
    """What TensorFlow and BLAS run with in the calling process (module level: picklable)."""
    import tensorflow as tf

    # items meet in pairs, so each pair runs in both workers at once: a sleep let one worker
    # take every item while the other was slow to pick its first up (1 run in 4 after the
    # audio tests)
    both_workers.wait(timeout=60)
    return (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
            len(tf.config.get_visible_devices("GPU")), os.getpid(), tuple(_blas_threads()))


def _die(_):
    os._exit(3)


def _square_unless_seventh(i):
    if i % 7 == 0:
        raise errors.CorruptAudioFile(f"/x/{i}.wav", "cannot decode")
    return i * i


@pytest.mark.parametrize("count, processes", [(0, False), (1.5, False), (True, False),
                                              (2, "yes")])
def test_workers_validate(count, processes):
    with pytest.raises(ConfigError, match="workers: "):
        Workers(count, processes)


def test_workers_of_an_int_is_threads():
    assert Workers.of(3) == Workers(3, processes=False)
    assert Workers.of(PROCESSES) is PROCESSES


@pytest.mark.parametrize("error", [
    errors.CorruptAudioFile("/a/b.wav", "not a readable audio file"),
    errors.SilentAudioError("/a/c.flac", "all silent"),
    errors.ManifestError("m.csv", "missing column 'singer'"),
    errors.UnknownNameError("model", "nope", ["a", "b"]),
    errors.ConfigError("workers: count must be an integer >= 1"),
])
def test_errors_survive_pickling(error):
    """Errors pickle (as across processes) with their type, message and fields."""
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    assert vars(back) == vars(error)


def test_processes_keep_good_results_and_report_bad_like_threads(write_audio, tone, tmp_path):
    good1 = str(write_audio("a.wav", tone(seconds=1.0), SR))
    good2 = str(write_audio("b.flac", tone(seconds=2.0, sr=48000), 48000))
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    items = [good1, str(bad), good2]
    threads = run_batch(audio.load_audio, items, workers=2)
    processes = run_batch(audio.load_audio, items, workers=PROCESSES)
    assert list(processes.ok) == [good1, good2] and processes.failed == threads.failed
    assert all(np.array_equal(processes.ok[g], threads.ok[g]) for g in (good1, good2))
    assert processes.failed[str(bad)].startswith(f"{bad}: not a readable audio file")


def test_processes_send_items_in_chunks_and_keep_order_and_failures():
    """70 items on 2 workers go in chunks of 8; each item's result or error stays its own."""
    res = run_batch(_square_unless_seventh, range(70), workers=PROCESSES)
    assert list(res.ok) == [i for i in range(70) if i % 7] and res.ok[69] == 69 * 69
    assert res.failed == {i: f"/x/{i}.wav: cannot decode" for i in range(0, 70, 7)}


def test_processes_run_single_threaded_cpu_tensorflow_and_are_kept():
    with multiprocessing.get_context("spawn").Manager() as manager:
        settings = functools.partial(_tf_settings, both_workers=manager.Barrier(2))
        first = run_batch(settings, range(4), workers=PROCESSES).ok.values()
        again = run_batch(settings, range(4), workers=PROCESSES).ok.values()
    assert {s[:3] for s in first} == {(1, 1, 0)}  # one intra-/inter-op thread, no GPU
    blas = [s[4] for s in first]  # numpy's and scipy's BLAS (TF's import loads both)
    assert all(len(b) >= 2 and set(b) == {1} for b in blas)  # one thread each
    pids = {s[3] for s in first}
    assert os.getpid() not in pids and len(pids) == 2
    assert {s[3] for s in again} <= pids  # the same processes: no second start-up


def test_processes_need_a_picklable_function():
    with pytest.raises(ConfigError, match="picklable function"):
        run_batch(lambda p: p, [1], workers=PROCESSES)


def test_a_dead_worker_process_is_an_error_and_the_next_batch_starts_afresh():
    with pytest.raises(RuntimeError, match="worker process died"):
        run_batch(_die, [1], workers=PROCESSES)
    assert run_batch(str, [1, 2], workers=PROCESSES).ok == {1: "1", 2: "2"}


def test_the_kept_pool_is_closed_at_exit():
    """`_close_pool` (registered with atexit) stops the kept workers while modules are intact:
    a pool collected during interpreter teardown printed an "Exception ignored" traceback."""
    run_batch(str, [1], workers=PROCESSES)
    processes = list(batch._pool._processes.values())
    batch._close_pool()
    assert batch._pool is None and not any(p.is_alive() for p in processes)
    assert run_batch(str, [1, 2], workers=PROCESSES).ok == {1: "1", 2: "2"}  # starts afresh


def test_thread_batches_run_blas_on_one_thread_and_restore_it():
    import scipy.linalg  # noqa: F401  scipy's BLAS too

    with threadpool_limits(2, user_api="blas"):
        assert set(_blas_threads()) == {2}
        res = run_batch(_blas_threads, range(4), workers=2)
        assert [set(b) for b in res.ok.values()] == [{1}] * 4
        assert set(_blas_threads()) == {2}
        res = run_batch(_blas_threads, range(2), workers=1)  # one worker: BLAS keeps its threads
        assert [set(b) for b in res.ok.values()] == [{2}] * 2


def test_a_thread_batch_beside_the_main_threads_leaves_blas_as_it_was():
    """A batch run from another thread, overlapping the main thread's and ending first (a
    case where restoring what each found would leave one thread for good), does not touch
    BLAS's threads."""
    a_running, release_a = threading.Event(), threading.Event()
    seen = {}

    def a_item(_):
        a_running.set()
        release_a.wait(10)
        return _blas_threads()

    def b_item(i):
        if i == 0:  # let the other batch end while this one runs
            release_a.set()
            other.join(10)
        return _blas_threads()

    before = _blas_threads()  # this machine's default: one per core
    if set(before) == {1}:
        pytest.skip("one core: BLAS runs on one thread anyway")
    other = threading.Thread(target=lambda: seen.update(a=run_batch(a_item, [0, 1], workers=2)))
    other.start()
    a_running.wait(10)
    seen["b"] = run_batch(b_item, [0, 1], workers=2)
    assert not other.is_alive() and len(seen["a"].ok) == 2
    assert [set(b) for b in seen["b"].ok.values()] == [{1}, {1}]
    assert _blas_threads() == before
