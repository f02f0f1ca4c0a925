"""`singer-zoo heldout SETS_DIR [EMBEDDER ...] --out DIR`: held-out table + t-SNE plots.

Scores the baselines (MFCC mean+std, the paper's handcrafted features), untrained networks
of zoo rows, and every EMBEDDER (a `.keras` file, or an exported model's name or folder) on
the held-out sets of SETS_DIR (see `singer_zoo.evaluation.heldout`), and writes
DIR/heldout.md (the table), DIR/heldout.json (metrics and each network's calibrated
same-singer threshold) and DIR/tsne_<set>.png. With --write-thresholds the threshold of each
exported EMBEDDER folder is stored in its model card, where `Embedder.verify` reads it,
with the model's row of the table and the baselines' (card entry "heldout").
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("heldout", help="evaluate embedders and baselines on held-out "
                              "voices (table + t-SNE)",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("sets", metavar="SETS_DIR", help="folder with sung/, sung_rooms/ and/or speech/ "
                   "manifest.csv (recipes/training_pack.py writes one)")
    p.add_argument("embedders", nargs="*", metavar="EMBEDDER",
                   help="a .keras file (embedder or siamese model) or an exported model")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--untrained", default="mobile_resnext_attention", metavar="ROWS",
                   help="comma-separated zoo rows scored at random initialisation "
                        "(default mobile_resnext_attention; '' for none)")
    p.add_argument("--no-baselines", action="store_true", help="skip MFCC and handcrafted")
    p.add_argument("--write-thresholds", action="store_true",
                   help="store each exported EMBEDDER's calibrated threshold in its card")
    p.set_defaults(func=run)


def _usable(sets, windows):
    """The sets without recordings that cannot be featurised (each one said)."""
    from singer_zoo.config import FeatureConfig
    from singer_zoo.data.manifest import Manifest
    from singer_zoo.errors import FileProblem
    from singer_zoo.evaluation.heldout import HeldoutSet

    out = []
    for s in sets:
        keep = []
        for r in s.manifest:
            try:
                windows(r.path, FeatureConfig())
                keep.append(r)
            except FileProblem as e:
                print(f"left out: {e}")
        out.append(HeldoutSet(s.name, Manifest(keep, s.manifest.root)))
    return out


def methods_for(args, windows) -> tuple[dict, dict]:
    """({name: (HeldoutSet) -> vectors}, {name: exported folder}) for the command line."""
    from pathlib import Path

    import numpy as np

    from singer_zoo.config import FeatureConfig
    from singer_zoo.evaluation import heldout as ho
    from singer_zoo.evaluation.baseline import baseline_performance_vectors

    def paths(s):
        return [r.path for r in s.manifest]

    def network(embed, cfg):  # embed(windows) -> (k, dim), on the front end `cfg`
        return lambda s: ho.network_vectors(embed, paths(s), windows, cfg)

    def inference(net):
        return lambda w: net(w, training=False)

    methods, exported, mfcc = {}, {}, {}

    def mfcc_z(s):  # computed once per set for both MFCC rows
        if s.name not in mfcc:
            mfcc[s.name] = ho.zscore(np.stack([ho.mfcc_stats(p) for p in paths(s)]))
        return mfcc[s.name]

    if not args.no_baselines:
        methods[ho.MFCC] = mfcc_z
        methods[ho.MFCC_COSINE] = lambda s: ho.unit(mfcc_z(s))
        methods[ho.HANDCRAFTED] = lambda s: baseline_performance_vectors(s.manifest)[0]
    for row in filter(None, args.untrained.split(",")):
        net = ho.untrained_embedder(row)
        methods[f"untrained {row}"] = network(inference(net), net.features)
    for e in args.embedders:
        if e.endswith(".keras"):
            net = ho.keras_embedder(e)
            name = f"{Path(e).parent.name}/{Path(e).name}"
            cfg = getattr(net, "features", None) or FeatureConfig()  # older files: defaults
            methods[name] = network(inference(net), cfg)
        else:
            import singer_zoo

            emb = singer_zoo.load(e)
            name = f"exported/{emb.name}" if not Path(e).is_dir() else str(e)
            exported[name] = emb.path
            methods[name] = network(emb.embed_windows, emb.features)
    return methods, exported


def run(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from singer_zoo.errors import ConfigError
    from singer_zoo.evaluation import heldout as ho
    from singer_zoo.evaluation.plots import plot_tsne
    from singer_zoo.export.card import set_verification

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    windows = ho.Windows()
    sets = _usable(ho.load_sets(args.sets), windows)
    methods, exported = methods_for(args, windows)
    if not methods:
        raise ConfigError("nothing to evaluate: give an EMBEDDER, --untrained or baselines")
    ev = ho.evaluate(sets, methods)
    labels = {s.name: ([r.singer for r in s.manifest], [r.song or "speech" for r in s.manifest])
              for s in sets}
    calibration = {name: ho.calibrate({s: (v, labels[s][0]) for s, v in per.items()})
                   for name, per in ev["vectors"].items() if name not in ho.BASELINES}
    table = ho.markdown_table(ev["results"])
    (out / "heldout.md").write_text(table, encoding="utf-8")
    sizes = {s.name: {"recordings": len(s.manifest), "singers": len(s.manifest.singers),
                      "songs": len(s.manifest.songs)} for s in sets}
    (out / "heldout.json").write_text(json.dumps(
        {"sets": sizes, "results": ev["results"], "calibration": calibration}, indent=1),
        encoding="utf-8")
    for s in sets:
        vec = {name: per[s.name] for name, per in ev["vectors"].items()}
        plot_tsne(vec, np.array(labels[s.name][0]), np.array(labels[s.name][1]),
                  out / f"tsne_{s.name}.png", f"held-out {s.name} set: performance vectors")
    if args.write_thresholds:
        for name, folder in exported.items():
            rows = {k: ev["results"][k] for k in (name, *ho.BASELINES)
                    if k in ev["results"]}
            set_verification(folder, {**calibration[name], "calibrated_on": sizes,
                                      "sets": str(args.sets)},
                             {"sets": sizes, "results": rows})
            print(f"threshold {calibration[name]['threshold']:.4g} written to {folder}")
    print(table)
    return 0
