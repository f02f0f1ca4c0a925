"""`singer-zoo features MANIFEST --out DIR`: extract every recording's features.

Writes DIR/<recording id>.npy ((frames, bins) float32 dB in [0, top_db]) for every recording
that decodes, DIR/index.csv (recording, path, features, frames, windows) and
DIR/feature_config.json; prints one line per bad file and exits 1 if there were any (every
good file is still written), 0 otherwise. See docs/datasets.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

from singer_zoo.cli import add_extraction_options, extraction_workers


def register(subparsers) -> None:
    p = subparsers.add_parser("features", help="extract features for every recording",
                              description="Extract Mel or CQT features of a manifest's "
                                          "recordings into .npy files plus an index.csv.")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--frontend", default="mel", choices=("mel", "cqt"))
    add_extraction_options(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar (a summary line when not on a terminal; "
                        "default on)")
    p.set_defaults(func=run)


def _file_names(ids: list[str]) -> list[str]:
    """A distinct, filesystem-safe .npy name per recording id: ids that sanitise alike
    ("s!", "s?") or onto another id's name ("s" at row 2 and "s_2") get a counter until the
    name is free, compared case-insensitively (macOS and Windows file systems)."""
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", rid).strip("._") or "recording" for rid in ids]
    count = Counter(n.lower() for n in safe)
    used = {n.lower() for n in safe if count[n.lower()] == 1}  # unique ones keep their name
    names, taken = [], set()
    for name in safe:
        if count[name.lower()] > 1 or name.lower() in taken:
            base, k = name, 1
            while name.lower() in used or name.lower() in taken:
                name, k = f"{base}_{k}", k + 1
        taken.add(name.lower())
        names.append(f"{name}.npy")
    return names


def run(args) -> int:
    from singer_zoo.config import FeatureConfig
    from singer_zoo.data.manifest import read_manifest
    from singer_zoo.data.pipeline import load_feature_set, save_atomic

    cfg = FeatureConfig(frontend=args.frontend)
    man = read_manifest(args.manifest, check_files=False)
    fs, failed = load_feature_set(man, cfg, cache_dir=args.cache, workers=extraction_workers(args),
                                  progress=args.progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    windows = [int((fs.window_index[:, 0] == i).sum()) for i in range(fs.n_recordings)]
    tmp = out / f".index.csv.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["recording", "path", "features", "frames", "windows"])
        for rec, f, name, n in zip(fs.recordings, fs.features,
                                   _file_names([r.recording for r in fs.recordings]), windows):
            save_atomic(out / name, f)
            w.writerow([rec.recording, rec.path, name, len(f), n])
    os.replace(tmp, out / "index.csv")
    (out / "feature_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    for msg in failed.values():
        print(f"bad {msg}")
    print(f"wrote features of {fs.n_recordings} recordings ({fs.n_windows} windows) to {out}; "
          f"{len(failed)} bad file(s)")
    return 1 if failed else 0
