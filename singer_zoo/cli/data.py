"""`singer-zoo data synth|check|split-balanced` (docs/datasets.md).

- `synth OUT_DIR`: write a synthetic corpus and its manifest.csv;
- `check MANIFEST`: validate a manifest, decode every file, print a summary and one line per
  bad file; exit 0 if all are good, 1 if some files are bad, 2 if the manifest is malformed;
- `split-balanced MANIFEST --out DIR`: the DAMP-balanced song split into train.csv,
  validation.csv and test.csv.
"""
from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="generate, check and split data sets",
                              description="Synthetic corpora, manifest checks, song splits.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = sub.add_parser("synth", help="write a synthetic corpus and its manifest")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--singers", type=int, default=8, help="number of singers (default 8)")
    s.add_argument("--songs", type=int, default=4, help="number of songs (default 4)")
    s.add_argument("--seconds", type=float, default=10.0,
                   help="length of each recording (default 10)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--sample-rate", type=int, default=22050, help="Hz (default 22050)")
    s.add_argument("--format", default="wav", choices=("wav", "flac", "ogg", "m4a"))
    s.set_defaults(func=run_synth)
    c = sub.add_parser("check", help="validate a manifest and decode every file")
    c.add_argument("manifest", metavar="MANIFEST")
    c.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")
    c.set_defaults(func=run_check)
    b = sub.add_parser("split-balanced", help="DAMP-balanced train/validation/test split")
    b.add_argument("manifest", metavar="MANIFEST")
    b.add_argument("--out", required=True, metavar="DIR", help="folder for the three CSVs")
    b.add_argument("--songs", nargs="+", metavar="SONG",
                   help="the ordered song list (default: the 14 DAMP-balanced songs)")
    for side in ("train", "validation", "test"):
        b.add_argument(f"--{side}-songs", nargs="+", metavar="SONG",
                       help=f"{side} songs (default: the paper's split)")
    b.set_defaults(func=run_split)


def run_synth(args) -> int:
    from singer_zoo.data.synthetic import generate_corpus

    path = generate_corpus(args.out_dir, n_singers=args.singers, n_songs=args.songs,
                           seconds=args.seconds, seed=args.seed, sr=args.sample_rate,
                           fmt=args.format)
    print(f"wrote {args.singers * args.songs} recordings and {path}")
    return 0


def _duration(path: str) -> float:
    from singer_zoo.audio import stream_audio

    sr = 22050
    return sum(len(block) for block in stream_audio(path, sr=sr)) / sr


def run_check(args) -> int:
    from singer_zoo.batch import run_batch
    from singer_zoo.data.manifest import read_manifest

    man = read_manifest(args.manifest, check_files=False)
    result = run_batch(_duration, [r.path for r in man], workers=args.workers)
    total = sum(result.ok.values())
    h, rem = divmod(int(round(total)), 3600)
    print(f"{len(man)} recordings, {len(man.singers)} singers, {len(man.songs)} songs, "
          f"total duration {h}:{rem // 60:02d}:{rem % 60:02d} ({total:.1f} s)")
    for msg in result.failed.values():
        print(f"bad {msg}")
    print(f"{len(result.ok)} good, {len(result.failed)} bad")
    return 1 if result.failed else 0


def run_split(args) -> int:
    from singer_zoo.data.damp import DAMP_BALANCED_SONGS, damp_balanced_split
    from singer_zoo.data.manifest import read_manifest

    man = read_manifest(args.manifest, check_files=False)
    sides = damp_balanced_split(man, args.train_songs, args.validation_songs,
                                args.test_songs, songs=args.songs or DAMP_BALANCED_SONGS)
    out = Path(args.out)
    for side, part in sides.items():
        path = part.write(out / f"{side}.csv")
        print(f"{side}: {len(part)} performances by {len(part.singers)} singers -> {path}")
    return 0
