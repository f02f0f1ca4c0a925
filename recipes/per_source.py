"""Per-source k-NN singer accuracy of a Table 2 experiment on the Debian voices corpus.

The recording channel differs per source package (8 kHz telephone band for Asterisk, 16 kHz
studio for festvox, 22/44 kHz for KTuberling), so a model can identify a speaker by channel.
This script re-embeds the test performances of `embedding_split(manifest)` with each row's
best.keras (features from the same cache as the experiment) and the handcrafted baseline, and
reports, for every method:

- `all`: leave-one-out k-NN singer accuracy over all test performances (= report.md);
- `by source`: the same predictions (neighbours searched among ALL test performances),
  scored separately for the queries of each source;
- `within <source>`: k-NN restricted to the test performances of one source that holds more
  than one test speaker (channel held fixed: the only voice-vs-voice test here);
- `source k-NN`: k-NN accuracy of predicting the SOURCE label (how strongly the space
  clusters by channel);
- with --untrained, the same for each row's architecture at random initialisation (seed 0),
  a control for what training adds over a random convolutional projection.

    python recipes/per_source.py --data /tmp/debian_voices/manifest.csv \
        --run runs/real_voices --rows t2_resnext_shallow_average,mobile_resnext_attention \
        --cache /tmp/dv_cache --out runs/real_voices/per_source.json [--md FILE] [--untrained]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np


def loo_predictions(x, y, k):
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x, y)
    return clf.predict(None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", required=True, help="experiment output folder")
    ap.add_argument("--rows", required=True)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--md", default=None)
    ap.add_argument("--untrained", action="store_true",
                    help="also embed with each row's architecture at random initialisation "
                         "(seed 0): a control for how much of the accuracy training adds")
    a = ap.parse_args(argv)

    import keras

    import singer_zoo.models  # noqa: F401  (registers the custom layers for load_model)

    from singer_zoo.config import ZooConfig
    from singer_zoo.data import load_feature_set, read_manifest
    from singer_zoo.evaluation.baseline import baseline_performance_vectors
    from singer_zoo.evaluation.knn import KS, knn_accuracies
    from singer_zoo.evaluation.protocols import embedding_split
    from singer_zoo.experiments.embedding import performance_embeddings

    split = embedding_split(read_manifest(a.data))
    test = split["test"]
    methods, paths = {}, {}
    for row in a.rows.split(","):
        run = Path(a.run) / row
        cfg = ZooConfig.from_yaml(run / "config.yaml")
        model = keras.saving.load_model(run / "best.keras")
        fs, bad = load_feature_set(test, cfg.features, cache_dir=a.cache)
        for msg in bad.values():
            print("skipped:", msg)
        perf, _ = performance_embeddings(model.embedder, fs)
        methods[row] = perf
        paths[row] = [r.path for r in fs.recordings]
        if a.untrained:
            from singer_zoo.models import build_siamese

            keras.utils.set_random_seed(0)
            perf0, _ = performance_embeddings(build_siamese(cfg).embedder, fs)
            methods[f"{row} (untrained)"] = perf0
            paths[f"{row} (untrained)"] = paths[row]
    bvec, bkept = baseline_performance_vectors(test)
    methods["baseline"] = bvec
    paths["baseline"] = [r.path for r in bkept]

    common = set.intersection(*(set(p) for p in paths.values()))
    order = [r.path for r in test if r.path in common]
    for m in methods:
        pos = {p: i for i, p in enumerate(paths[m])}
        methods[m] = methods[m][[pos[p] for p in order]]
    by_path = {r.path: r for r in test}
    singer = np.array([by_path[p].singer for p in order])
    source = np.array([by_path[p].extra.get("source", "") for p in order])
    speakers_per_source = {s: sorted(set(singer[source == s])) for s in sorted(set(source))}

    out = {"n_test": len(order), "speakers_per_source": speakers_per_source,
           "recordings_per_source": dict(Counter(source.tolist())), "methods": {}}
    for m, x in methods.items():
        res = {"all": knn_accuracies(x, singer), "by_source": {}, "within_source": {},
               "source_knn": knn_accuracies(x, source)}
        for k in KS:
            pred = loo_predictions(x, singer, k)
            for s in speakers_per_source:
                sel = source == s
                res["by_source"].setdefault(s, {})[k] = float(np.mean(pred[sel] == singer[sel]))
        for s, spk in speakers_per_source.items():
            if len(spk) > 1:
                sel = source == s
                res["within_source"][s] = knn_accuracies(x[sel], singer[sel])
        out["methods"][m] = res
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))

    lines = [f"Test performances: {len(order)}; speakers per source: "
             + "; ".join(f"{s}: {', '.join(v)}" for s, v in speakers_per_source.items()), ""]
    head = "| method | scope | " + " | ".join(f"k={k}" for k in KS) + " |"
    lines += [head, "|" + "---|" * (2 + len(KS))]
    for m, res in out["methods"].items():
        def row(scope, d):
            return f"| {m} | {scope} | " + " | ".join(f"{d[k]:.3f}" for k in KS) + " |"
        lines.append(row("all test (singer)", res["all"]))
        for s, d in res["by_source"].items():
            lines.append(row(f"queries from {s} (singer)", d))
        for s, d in res["within_source"].items():
            lines.append(row(f"within {s} only (singer)", d))
        lines.append(row("all test (SOURCE label)", res["source_knn"]))
    text = "\n".join(lines) + "\n"
    print(text)
    if a.md:
        Path(a.md).parent.mkdir(parents=True, exist_ok=True)
        Path(a.md).write_text(text)


if __name__ == "__main__":
    main()
