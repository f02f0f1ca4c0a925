"""Search-by-voice index benchmark: exact flat L2 vs IVF on random 16-d embeddings.

For 10k, 100k and 1M vectors (float32, standard normal: the distances of a real
collection only change recall, not speed): the memory of the serialized index, the time
to add the vectors, and the latency of one query (k=10) on one thread, median of
`--queries` queries. At the largest size an `IndexIVFFlat` (nlist = 4 sqrt(n), nprobe
16, 64, 256) is measured too, with its recall@10 against the exact search (random
Gaussian vectors are the hard case for IVF: real embeddings cluster by singer).

    .venv/bin/python bench/bench_index.py [--sizes 10000,100000,1000000] [--queries 200]
"""
from __future__ import annotations

import argparse
import statistics
import time

import faiss
import numpy as np

DIM, K = 16, 10
NPROBES = (16, 64, 256)


def query_ms(index, queries) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None], K)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| index | vectors | memory (MB) | add (s) | query k=10, 1 thread (ms) | recall@10 |")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        x = rng.standard_normal((n, DIM), dtype=np.float32)
        q = rng.standard_normal((args.queries, DIM), dtype=np.float32)
        flat = faiss.IndexIDMap2(faiss.IndexFlatL2(DIM))
        t = time.perf_counter()
        flat.add_with_ids(x, np.arange(n, dtype=np.int64))
        add_s = time.perf_counter() - t
        mb = faiss.serialize_index(flat).nbytes / 1e6
        print(f"| flat L2 (IDMap2) | {n:,} | {mb:.1f} | {add_s:.2f} | "
              f"{query_ms(flat, q):.3f} | 1.000 |")
        if n >= 1_000_000 or n == max(int(s) for s in args.sizes.split(",")):
            nlist = int(4 * np.sqrt(n))
            coarse = faiss.IndexFlatL2(DIM)  # kept referenced while the IVF index lives
            ivf = faiss.IndexIVFFlat(coarse, DIM, nlist)
            t = time.perf_counter()
            ivf.train(x[rng.choice(n, min(n, 64 * nlist), replace=False)])
            ivf.add(x)
            add_s = time.perf_counter() - t
            _, exact = flat.search(q, K)
            mb = faiss.serialize_index(ivf).nbytes / 1e6
            for nprobe in NPROBES:
                ivf.nprobe = nprobe
                _, approx = ivf.search(q, K)
                recall = np.mean([len(set(a) & set(e)) / K for a, e in zip(approx, exact)])
                print(f"| IVFFlat nlist={nlist} nprobe={nprobe} | {n:,} | {mb:.1f} | "
                      f"{add_s:.2f} (train+add) | {query_ms(ivf, q):.3f} | {recall:.3f} |")


if __name__ == "__main__":
    main()
