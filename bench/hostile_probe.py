"""Hostile-input probe: every kind of bad (and odd but good) input through every public path.

    PYTHONPATH=. python bench/hostile_probe.py [--model NAME_OR_PATH] [--out DIR]

`make_inputs(folder)` writes the corpus: two good recordings plus one file per input kind
(missing, empty, directory, text named .wav/.flac/.mp3, header-only and cut WAVs, 1-Hz and
10-MHz header bombs, NaN samples, silence, symlink loop, dangling symlink, cut FLAC, ...)
and in-memory waveforms (silent, int16, NaN, stereo, empty, strings, a bytes path).
Each file kind goes, mixed with the good recordings, through
`data check`, `features`, `load().embed`, `embed_many`, `index build`, `index add` and
`index query` (the CLI where there is one, the Python API otherwise); each array kind
through `embed` and `window_embeddings`. A cell is
- `named`: refused with an error (or a skipped-file line) that names the input,
- `OK`: processed, as it should be (a short, stereo, 8-bit or cut-but-readable file),
- `wrong`: refused though good, accepted though bad, or an error that does not name it,
- `crash`: a traceback or an exit status other than the documented ones;
and `good survive` says whether both good recordings came out of every batch path.
`run_probe()` returns the rows; the script prints the table and exits 1 unless every cell
is named or OK with nothing lost (tests/test_hostile_probe.py keeps it so).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import re
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
GOOD = ("good_a.wav", "good_b.flac")


def _voice(seconds: float, f0: float = 220.0, sr: int = SR) -> np.ndarray:
    """A sung-like harmonic tone with vibrato, float32 in [-0.6, 0.6]."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / sr
    return (sum(0.3 / k * np.sin(k * phase) for k in range(1, 6))).astype(np.float32)


def _wav_rate_bomb(path: Path, rate: int, n_bytes: int) -> None:
    """A 16-bit mono WAV of `n_bytes` of noise whose header claims `rate` Hz."""
    sf.write(path, np.zeros(1, np.float32), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes()[:44])
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", rate * 2)
    data[40:44] = struct.pack("<I", n_bytes)
    noise = (np.random.default_rng(0).normal(0, 3000, n_bytes // 2)).astype("<i2").tobytes()
    path.write_bytes(bytes(data) + noise)


# kind -> (file name, whether a good outcome is expected, writer(path))
def _file_kinds() -> dict:
    def text(p):
        p.write_text("this is not audio, just text\n" * 40)

    def header_only(p):
        sf.write(p, np.zeros((0, 1), np.float32), SR, subtype="PCM_16")

    def promises_more(p):  # header promises 4 s, 2 s present: decoded as far as it goes
        sf.write(p, _voice(2.0), SR, subtype="PCM_16")
        data = bytearray(p.read_bytes())
        data[40:44] = struct.pack("<I", 4 * SR * 2)
        p.write_bytes(bytes(data))

    def cut_flac(p):
        sf.write(p, _voice(4.0), SR)
        data = p.read_bytes()
        p.write_bytes(data[:len(data) // 2] + bytes(4096) + data[len(data) // 2:])

    def nan(p):
        y = _voice(2.0)
        y[SR] = np.nan
        sf.write(p, y, SR, subtype="FLOAT")

    def loop(p):
        p.symlink_to(p.name)

    return {
        "missing file": ("missing.wav", False, lambda p: None),
        "empty (0 bytes)": ("empty.wav", False, lambda p: p.write_bytes(b"")),
        "directory named .wav": ("folder.wav", False, lambda p: p.mkdir()),
        "text named .wav": ("text.wav", False, text),
        "text named .flac": ("text.flac", False, text),
        "text named .mp3": ("text.mp3", False, text),
        "random bytes .m4a": ("noise.m4a", False,
                              lambda p: p.write_bytes(np.random.default_rng(1).bytes(20000))),
        "header-only WAV": ("header_only.wav", False, header_only),
        "WAV cut short (readable part)": ("cut.wav", True, promises_more),
        "FLAC with a damaged middle": ("damaged.flac", False, cut_flac),
        "1-Hz header, 400 KB (memory bomb)": ("bomb_400k.wav", False,
                                              lambda p: _wav_rate_bomb(p, 1, 400_000)),
        "1-Hz header, 8 KB": ("bomb_8k.wav", False, lambda p: _wav_rate_bomb(p, 1, 8_000)),
        "10-MHz header": ("fast.wav", False, lambda p: _wav_rate_bomb(p, 10_000_000, 80_000)),
        "NaN sample (float WAV)": ("nan.wav", False, nan),
        "all silent": ("silent.wav", False,
                       lambda p: sf.write(p, np.zeros(3 * SR, np.float32), SR)),
        "symlink loop": ("loop.wav", False, loop),
        "dangling symlink": ("dangling.wav", False,
                             lambda p: p.symlink_to(p.parent / "gone" / "target.wav")),
        "very short (0.05 s)": ("short.wav", True, lambda p: sf.write(p, _voice(0.05), SR)),
        "stereo 96 kHz": ("stereo96k.wav", True,
                          lambda p: sf.write(p, np.stack([_voice(3, sr=96000)] * 2, 1), 96000)),
        "8-bit unsigned WAV": ("u8.wav", True,
                               lambda p: sf.write(p, _voice(3.0), SR, subtype="PCM_U8")),
        "name with spaces and accents": ("chanté la nuit.ogg", True,
                                         lambda p: sf.write(p, _voice(3.0), SR)),
    }


def _array_kinds() -> dict:
    """kind -> (value, whether it should embed)."""
    y = _voice(3.0)
    return {
        "array: silent": (np.zeros(3 * SR, np.float32), False),
        "array: int16 PCM": ((y * 20000).astype(np.int16), False),
        "array: NaN": (np.where(np.arange(len(y)) == 5, np.nan, y).astype(np.float32), False),
        "array: stereo (2, n)": (np.stack([y, y]), False),
        "array: empty": (np.zeros(0, np.float32), False),
        "array: list of strings": (["a.wav", "b.wav"], False),
        "array: float64": (y.astype(np.float64), True),
    }


def make_inputs(folder: Path) -> tuple[list[Path], dict]:
    """Write the good recordings and one file per kind; return (goods, {kind: (path, ok)})."""
    folder.mkdir(parents=True, exist_ok=True)
    goods = []
    for i, name in enumerate(GOOD):
        sf.write(folder / name, _voice(4.0, f0=200.0 + 60 * i), SR)
        goods.append(folder / name)
    kinds = {}
    for kind, (name, ok, write) in _file_kinds().items():
        path = folder / name
        write(path)
        kinds[kind] = (path, ok)
    return goods, kinds


def _cli(argv: list[str]) -> tuple[int | None, str]:
    """(exit status, stdout + stderr) of `singer-zoo argv`; (None, traceback) on a crash."""
    import traceback

    from singer_zoo.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
        except BaseException:  # noqa: BLE001 - a crash is what the probe reports
            return None, out.getvalue() + traceback.format_exc()
    return rc, out.getvalue()


def _manifest(folder: Path, paths: list[Path]) -> Path:
    m = folder / "probe_manifest.csv"
    with open(m, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "singer"])
        w.writerows([os.fspath(p), f"s{i}"] for i, p in enumerate(paths))
    return m


def _cell(ok_expected: bool, accepted: bool, named: bool) -> str:
    if accepted:
        return "OK" if ok_expected else "wrong"
    return "named" if named and not ok_expected else "wrong"


def _batch_paths(work: Path, model: str, goods: list[Path], path: Path, ok: bool) -> dict:
    """{path name: (cell, goods survived)} for the batch paths, `path` mixed with goods."""
    import singer_zoo

    name = path.name
    m = _manifest(work, [goods[0], path, goods[1]])
    res = {}
    rc, out = _cli(["data", "check", str(m)])
    if rc is None or rc not in (0, 1, 2):
        res["data check"] = ("crash", False)
    else:
        bad = [line for line in out.splitlines() if line.startswith("bad ")]
        counted = re.search(r"^(\d+) good, \d+ bad$", out, re.MULTILINE)
        good_n = int(counted.group(1)) if counted else 0
        res["data check"] = (_cell(ok, not bad, any(name in b for b in bad)),
                             good_n == 2 + (not bad))
    rc, out = _cli(["features", str(m), "--out", str(work / "feats"), "--no-progress"])
    if rc is None or rc not in (0, 1):
        res["features"] = ("crash", False)
    else:
        bad = [line for line in out.splitlines() if line.startswith("bad ")]
        with open(work / "feats" / "index.csv", newline="", encoding="utf-8") as fh:
            written = {r["path"] for r in csv.DictReader(fh)}
        res["features"] = (_cell(ok, not bad, any(name in b for b in bad)),
                           {os.fspath(g) for g in goods} <= written)
    emb = singer_zoo.load(model)
    try:
        got, failed = emb.embed_many([goods[0], path, goods[1]], progress=False)
        res["embed_many"] = (_cell(ok, path in got, name in failed.get(path, "")),
                             goods[0] in got and goods[1] in got)
    except BaseException:  # noqa: BLE001
        res["embed_many"] = ("crash", False)
    idx = work / "probe.index"
    rc, out = _cli(["index", "build", str(m), "--model", model, "--out", str(idx),
                    "--overwrite"])
    if rc is None or rc not in (0, 1):
        res["index build"] = ("crash", False)
    else:
        skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
        res["index build"] = (_cell(ok, not skipped, any(name in s for s in skipped)),
                              f"indexed {2 + (not skipped)} recordings" in out)
    rc, out = _cli(["index", "add", str(work / "add.index"), str(path)])
    if rc is None or rc not in (0, 1):
        res["index add"] = ("crash", None)
    else:
        res["index add"] = (_cell(ok, rc == 0, name in out), None)
    rc, out = _cli(["index", "query", str(work / "goods.index"), str(path), "-k", "2"])
    if rc is None or rc not in (0, 2):
        res["index query"] = ("crash", None)
    else:
        res["index query"] = (_cell(ok, rc == 0, name in out), None)
    return res


def run_probe(model: str = "mobile_resnext_attention", work: Path | None = None
              ) -> tuple[list[str], list[dict]]:
    """(path names, one row per input kind: {"kind", path: cell, ..., "good survive"})."""
    import singer_zoo
    from singer_zoo.errors import SingerZooError

    work = Path(work or tempfile.mkdtemp(prefix="hostile_probe.")).resolve()
    goods, kinds = make_inputs(work / "inputs")
    _manifest(work, goods).rename(work / "goods.csv")
    for name in ("goods.index", "add.index"):  # queried / extended by every kind
        rc, out = _cli(["index", "build", str(work / "goods.csv"), "--model", model,
                        "--out", str(work / name), "--overwrite"])
        assert rc == 0, f"the good recordings do not index: {out}"
    emb = singer_zoo.load(model)
    columns = ["data check", "features", "embed", "embed_many", "index build", "index add",
               "index query"]
    rows = []
    for kind, (path, ok) in kinds.items():
        row = {"kind": kind}
        try:
            emb.embed(path)
            row["embed"] = "OK" if ok else "wrong"
        except SingerZooError as e:
            row["embed"] = _cell(ok, False, path.name in str(e))
        except BaseException:  # noqa: BLE001
            row["embed"] = "crash"
        batch = _batch_paths(work, model, goods, path, ok)
        row.update({k: v[0] for k, v in batch.items()})
        row["good survive"] = "yes" if all(v[1] for v in batch.values()
                                           if v[1] is not None) else "NO"
        rows.append(row)
    for kind, (value, ok) in _array_kinds().items():
        row = {"kind": kind, "good survive": "-"}
        for col, fn in (("embed", emb.embed), ("window_embeddings", emb.window_embeddings)):
            try:
                fn(value)
                row[col] = "OK" if ok else "wrong"
            except SingerZooError as e:
                row[col] = _cell(ok, False, "<waveform>" in str(e))
            except BaseException:  # noqa: BLE001
                row[col] = "crash"
        rows.append(row)
    columns.append("window_embeddings")
    path = goods[0]
    row = {"kind": "bytes path (good file)", "good survive": "-"}
    try:
        emb.embed(os.fsencode(path))
        row["embed"] = "OK"
    except BaseException:  # noqa: BLE001
        row["embed"] = "crash"
    rows.append(row)
    return columns, rows


def table(columns: list[str], rows: list[dict]) -> str:
    cols = ["kind", *columns, "good survive"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |")
    return "\n".join(lines)


def passed(rows: list[dict]) -> bool:
    """Every cell named or OK (or not applicable), and no good file lost."""
    return all(v in ("named", "OK", "-", "yes") for r in rows for k, v in r.items()
               if k != "kind")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mobile_resnext_attention")
    p.add_argument("--out", help="work folder (default: a new temporary one)")
    args = p.parse_args(argv)
    columns, rows = run_probe(args.model, Path(args.out) if args.out else None)
    print(table(columns, rows))
    cells = [v for r in rows for k, v in r.items() if k not in ("kind", "good survive")]
    good = sum(v in ("named", "OK") for v in cells)
    total = sum(v != "-" for v in cells)
    print(f"\n{good}/{total} cells named or OK; good files survive in "
          f"{sum(r['good survive'] == 'yes' for r in rows)}/"
          f"{sum(r['good survive'] != '-' for r in rows)} file kinds")
    return 0 if passed(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
