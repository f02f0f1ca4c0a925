"""`singer-zoo export RUN_DIR_OR_MODEL --out DIR`: SavedModel + TFLite + model card.

See docs/export.md. `--representative MANIFEST` gives the audio that calibrates the
full-int8 TFLite file (up to `--calibration-files` recordings, 6-s clips) and is used for
the equality checks too; without it a synthetic performance is checked.
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a trained embedder for deployment",
                              description="Export a run folder (config.yaml + best.keras) or "
                                          "a .keras file to a SavedModel, TFLite files and "
                                          "a model card (metadata.json).")
    p.add_argument("source", metavar="RUN_DIR_OR_MODEL")
    p.add_argument("--out", required=True, metavar="DIR", help="export folder (replaced "
                   "atomically if it holds a previous export)")
    p.add_argument("--tflite", default="float32,int8", metavar="MODES",
                   help="comma-separated TFLite modes: float32, int8, full-int8, or none "
                        "(default: float32,int8)")
    p.add_argument("--representative", metavar="MANIFEST",
                   help="manifest of calibration/check audio (required for full-int8)")
    p.add_argument("--calibration-files", type=int, default=16, metavar="N")
    p.add_argument("--config", metavar="NAME_OR_YAML",
                   help="zoo config of an older .keras file (one that does not describe "
                        "itself) without config.yaml beside it")
    p.add_argument("--onnx", action="store_true",
                   help="also write model.onnx (windows -> embeddings, checked with "
                        "onnxruntime; needs the onnx extra)")
    p.add_argument("--name", help="model name in the card (default: the config's name)")
    p.add_argument("--card-extra", metavar="JSON_FILE",
                   help="a JSON object of more model-card entries (training data, licences, "
                        "held-out results), written into metadata.json")
    p.set_defaults(func=run)


def _waveforms(manifest: str, n: int, sr: int) -> dict:
    """{path: waveform} of the first `n` recordings of `manifest` that decode."""
    from singer_zoo.audio import load_audio
    from singer_zoo.batch import run_batch
    from singer_zoo.data.manifest import read_manifest

    paths = [r.path for r in read_manifest(manifest, check_files=False, splits=None)][:n]
    res = run_batch(lambda p: load_audio(p, sr=sr), paths)
    if res.failed:
        print(res.report())
    return res.ok


def _card_extra(path: str) -> dict:
    import json

    from singer_zoo.errors import ConfigError

    try:
        extra = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the card entries ({e})") from None
    if not isinstance(extra, dict):
        raise ConfigError(f"{path}: card entries must be a JSON object, got "
                          f"{type(extra).__name__}")
    return extra


def run(args) -> int:
    from singer_zoo.errors import ConfigError
    from singer_zoo.export import export
    from singer_zoo.export.tflite import parse_modes
    from singer_zoo.registry import get_config

    modes = parse_modes(args.tflite)
    config = get_config(args.config) if args.config else None
    rep = {}
    if args.representative:
        rep = _waveforms(args.representative, args.calibration_files, 22050)
        if not rep:
            raise ConfigError(f"{args.representative}: no usable calibration audio")
    elif "full-int8" in modes:
        raise ConfigError("--tflite full-int8 needs --representative MANIFEST")
    res = export(args.source, args.out, modes, representative=list(rep.values()),
                 check_audio=next(iter(rep), None), config=config, name=args.name,
                 card_extra=_card_extra(args.card_extra) if args.card_extra else None,
                 onnx=args.onnx)
    print(f"exported {res.card['name']} to {res.path}")
    for check, values in res.card["checks"].items():
        print(f"  {check}: " + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
    return 0
