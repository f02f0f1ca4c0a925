"""Re-estimate the batch-norm statistics of a trained embedder on its training recordings
(precise BN, singer_zoo.training.precise_bn) and save it as a new .keras file.

For embedders trained before the batch-norm fix (momentum 0.99, a few dozen updates: their
moving statistics are still mostly the initial mean 0 / variance 1), this is the fix without
retraining: the weights stay, the statistics become the average batch statistics of the
training data under those weights.

    python recipes/refresh_bn.py singer_zoo/shipped/t2_resnext_shallow_average/embedder.keras \
        /tmp/debian_voices/manifest.csv --singers allison,armelle,... --out runs/refresh/t2.keras

`--singers` keeps only the training speakers of the manifest (the recipes that built the
shipped embedders name them); windows are drawn by the package's seeded window source.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from singer_zoo.config import FeatureConfig  # noqa: E402
from singer_zoo.data import read_manifest  # noqa: E402
from singer_zoo.data.batches import WindowBatches  # noqa: E402
from singer_zoo.data.manifest import Manifest  # noqa: E402
from singer_zoo.data.pipeline import load_feature_set  # noqa: E402
from singer_zoo.training.precise_bn import recompute_bn_statistics  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("keras_file", type=Path)
    p.add_argument("manifest", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--singers", default="", help="comma-separated singers to use (default all)")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    model = keras.saving.load_model(args.keras_file, compile=False)
    manifest = read_manifest(args.manifest)
    keep = {s for s in args.singers.split(",") if s}
    if keep:
        manifest = Manifest([r for r in manifest if r.singer in keep], root=manifest.root)
    fs, failed = load_feature_set(manifest, FeatureConfig())
    for message in failed.values():
        print(f"skipped {message}", file=sys.stderr)
    labels = np.zeros(fs.n_recordings, np.int32)
    source = WindowBatches(fs, labels, args.batch_size, shuffle=True, seed=args.seed,
                           repeat=True)
    used = recompute_bn_statistics(model, (source[i][0] for i in range(args.batches)),
                                   args.batches)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"{args.out}: BN statistics of {used} batches of {args.batch_size} windows from "
          f"{fs.n_recordings} recordings of {len(set(r.singer for r in fs.recordings))} singers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
