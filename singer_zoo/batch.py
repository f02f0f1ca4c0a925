"""Run one function over many files so that a bad file never costs the others' results.

`run_batch(fn, items)` calls `fn(item)` for every item (optionally on a thread pool: libsndfile
decoding, resampling and TF release the GIL; ffmpeg decoding runs one thread at a time, see
`singer_zoo.decoders`), collects results in input order, and records each
`SingerZooError` as `failed[item] = "<path>: <problem>"` instead of stopping. Any other
exception is a bug and propagates.

Each failure is logged as a warning the first time a process meets it and at DEBUG level
after that: a table experiment reads the same recordings for every row and fold, and
repeated its warnings row x fold times. `BatchResult.failed` always lists every failure.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import sys
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable

from singer_zoo.errors import SingerZooError

log = logging.getLogger(__name__)
_reported: set[str] = set()  # failure messages already logged as warnings (module docstring)


@dataclass
class BatchResult:
    ok: dict = field(default_factory=dict)  # item -> result, in input order
    failed: dict = field(default_factory=dict)  # item -> error message

    def report(self) -> str:
        """One line per failed item, for logs and CLI output."""
        return "\n".join(f"skipped {msg}" for msg in self.failed.values())


def run_batch(fn: Callable, items: Iterable[Hashable], *, workers: int = 1,
              progress: bool = False, label: str = "files") -> BatchResult:
    items = list(items)
    bar = None
    if progress:
        from keras.utils import Progbar

        # a live bar on a terminal; one summary line in logs and pipes (no \r floods)
        bar = Progbar(len(items), unit_name=label, verbose=1 if sys.stdout.isatty() else 2)
    outcomes = {}

    def record(item, fut_or_call):
        try:
            outcomes[item] = (True, fut_or_call())
        except SingerZooError as e:
            message = str(e)
            log.log(logging.DEBUG if message in _reported else logging.WARNING,
                    "skipped %s", message)
            _reported.add(message)
            outcomes[item] = (False, message)
        if bar is not None:
            bar.add(1)

    if workers <= 1:
        for item in items:
            record(item, lambda item=item: fn(item))
    else:
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for fut in cf.as_completed(futures):
                record(futures[fut], fut.result)
    result = BatchResult()
    for item in items:
        good, value = outcomes[item]
        (result.ok if good else result.failed)[item] = value
    return result
