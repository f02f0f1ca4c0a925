"""Training-batch throughput: the numpy batch sources (`singer_zoo.data.batches`, what the
JAX backend's PyDataset view reads) and their tf.data views, side by side in one run, on
random features shaped like 100 recordings x 3 minutes (Mel, 96 bins).

    PYTHONPATH=$PWD python bench/bench_batches.py [--recordings 100] [--batches 200]

Prints batches/s of 32 for windows and pairs (docs/datasets.md quotes it).
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from singer_zoo.config import FeatureConfig
from singer_zoo.data.batches import PairBatches, WindowBatches
from singer_zoo.data.manifest import Recording
from singer_zoo.data.pipeline import FeatureSet


def rate(batches, n: int) -> float:
    it = iter(batches)
    next(it)  # start-up (tf.data: the graph and the first prefetch) is not timed
    t = time.perf_counter()
    for _ in itertools.islice(it, n):
        pass
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=100)
    ap.add_argument("--batches", type=int, default=200)
    args = ap.parse_args()
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    frames = 3 * 60 * cfg.sample_rate // cfg.hop_length
    recs = [Recording(f"/x/{i}.wav", f"s{i % 10}", recording=str(i))
            for i in range(args.recordings)]
    fs = FeatureSet([rng.uniform(0, 60, (frames, cfg.n_bins)).astype(np.float32)
                     for _ in recs], recs, cfg)
    labels = [i % 10 for i in range(args.recordings)]
    from singer_zoo.data.tfdata import source_dataset

    for name, make in (("windows", lambda: WindowBatches(fs, labels, 32, repeat=True)),
                       ("pairs", lambda: PairBatches(fs, labels, 32))):
        numpy_rate = rate(make().batches(), args.batches)
        tf_rate = rate(source_dataset(make()), args.batches)
        print(f"{name}: numpy source {numpy_rate:.0f} batches/s, tf.data view "
              f"{tf_rate:.0f} batches/s (batch 32, {fs.n_windows} windows)")


if __name__ == "__main__":
    main()
