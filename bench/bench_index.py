"""Search-by-voice index benchmark: what `VoiceIndex` (kind "auto") builds at each size.

For each size (default 10k, 100k, 1M, 10M; random standard-normal vectors of `--dim`
dimensions, 128 by default (the recommended shipped embedders; 16 for the paper's rows),
scaled to unit length with `--unit` (as the unit-embedding rows give); the hard case for
IVF: real embeddings cluster by singer) the index `singer_zoo.index` chooses (exact flat up
to `flat_max(dim)`, IVF with float16 vectors beyond) is built through `VoiceIndex.add`;
measured: its structure, the build time, the latency of one query (k=10) on one thread
(median of `--queries`), and recall@10 against exact search, for nprobe 128, 256 (the
default) and 512 on IVF. With `--real`, recall is also measured on real embeddings: the
window embeddings of the Debian voices corpus (`--real MANIFEST`) from the two recommended
shipped 128-d embedders, indexed as IVF (forced) with their own 2 sqrt(n) lists, probed at
the share of lists the default probes at 1M (and half and twice that), beside random
vectors of the same size and settings.

    .venv/bin/python bench/bench_index.py [--sizes 10000,100000,1000000,10000000]
        [--dim 128] [--unit] [--queries 100] [--real /tmp/debian_voices/manifest.csv]
"""
from __future__ import annotations

import argparse
import statistics
import time

import faiss
import numpy as np

from singer_zoo import index as vindex
from singer_zoo.errors import SingerZooError

K = 10
REAL = ("mobile_tdnn_statistics_80db_128d", "mobile_fast_attention_80db_128d")  # 128-d


def exact(x, q):
    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(x)
    return flat.search(q, K)[1]


def measure(idx, q, truth, nprobe=None):
    inner = faiss.downcast_index(idx.index)
    if nprobe is not None:
        inner.nprobe = nprobe
    times = []
    for v in q:
        t = time.perf_counter()
        idx.index.search(v[None], K)
        times.append((time.perf_counter() - t) * 1e3)
    got = idx.index.search(q, K)[1]
    recall = np.mean([len(set(a) & set(e)) / K for a, e in zip(got, truth)])
    return statistics.median(times), recall


def bench(x, q, label, kind="auto", probes=None):
    idx = vindex.VoiceIndex("bench", x.shape[1], kind=kind)
    t = time.perf_counter()
    idx.add(x, [{}] * len(x))
    build = time.perf_counter() - t
    truth = exact(x, q)
    if probes is None:
        probes = (128, 256, 512) if idx.structure == "ivf" else (None,)
    for p in probes:
        ms, rec = measure(idx, q, truth, p)
        what = f"IVF-fp16 nlist={faiss.downcast_index(idx.index).nlist} nprobe={p}" \
            if p else "flat (exact)"
        print(f"| {label} | {len(x):,} | {what} | {build:.1f} | {ms:.3f} | {rec:.3f} |",
              flush=True)


def real_embeddings(manifest):
    from singer_zoo import load
    from singer_zoo.index import collect

    paths = [r["path"] for r in collect(manifest)]
    for name in REAL:
        emb = load(name)
        yield name, np.concatenate([w for w in map(_windows(emb), paths) if w is not None])


def _windows(emb):
    def f(path):
        try:
            return emb.window_embeddings(path).astype(np.float32)
        except SingerZooError as e:  # a silent or unreadable recording: skipped
            print(f"skipped {e}", flush=True)
            return None
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000,10000000")
    ap.add_argument("--dim", type=int, default=128, help="dimensions of the random vectors")
    ap.add_argument("--unit", action="store_true",
                    help="random vectors scaled to unit length, as the unit-embedding rows give")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--real", help="manifest of the real voices for recall on real embeddings")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| vectors | n | index (auto) | build (s) | query k=10, 1 thread (ms) | recall@10 |")
    print("|---|---|---|---|---|---|")
    if args.real:  # same share of lists probed as the default at 1M (256 of 2000), x0.5, x2
        for name, x in real_embeddings(args.real):
            nlist = vindex.ivf_lists(len(x))
            probes = [max(1, round(nlist * f * vindex.NPROBE / vindex.ivf_lists(10**6)))
                      for f in (0.5, 1, 2)]
            q = x[rng.choice(len(x), min(len(x), args.queries), replace=False)]
            q = q + 0.01 * rng.standard_normal(q.shape).astype(np.float32)
            bench(x, q, f"real windows ({name})", kind="ivf", probes=probes)
            r = rng.standard_normal(x.shape, dtype=np.float32)
            bench(r, rng.standard_normal(q.shape, dtype=np.float32), "random, same size",
                  kind="ivf", probes=probes)
    for n in (int(s) for s in args.sizes.split(",")):
        x = rng.standard_normal((n, args.dim), dtype=np.float32)
        q = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        if args.unit:
            x, q = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (x, q))
        bench(x, q, f"random {args.dim}-d" + (", unit" if args.unit else ""))


if __name__ == "__main__":
    main()
