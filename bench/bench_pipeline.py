"""Feature pipeline throughput: ours vs librosa on the same files, in one run.

Both pipelines go from a 44.1 kHz stereo file to 256-frame windows of 96-bin Mel dB:
- ours: `singer_zoo.features.extract_windows` (audio.stream_audio decode + soxr resample,
  the Mel layer's numpy power per chunk, dB with the recording's max, chop), sequentially
  and through the package's batch path, `run_batch`, on 2 threads (`workers=2`) and on 2
  worker processes (`Workers(2, processes=True)`; their start-up is left out, as a long
  job pays it once);
- librosa: `librosa.load(sr=22050)` + `feature.melspectrogram` + `power_to_db(ref=np.max)`
  + the same `chop`.
Throughput is seconds of audio per second of wall time; each figure is the best of
`--repeats` rounds (the machine is shared), rounds alternate between the pipelines, and each
timed run starts after a short pause (`SETTLE_S`). The per-stage split times decode (to mono
at the native rate), resample and features (waveform -> windows) separately, and
`decode_only_batch2` (decode + downmix alone on the same 2 threads) gives the ceiling any
pipeline decoding with the same library can reach.

`--format m4a` (AAC, DAMP's format) measures ours only: librosa 0.11 reads AAC through
audioread, which finds no ffmpeg program here.

`--manifest M` runs both pipelines on the recordings of a manifest instead (real files in
their own formats and rates; files our pipeline refuses, e.g. silent ones, are left out of
both). `--hour` also measures the peak resident memory of `extract_features` on a generated
one-hour 44.1 kHz stereo WAV in a fresh process, next to the process's resident size after
imports and a warm-up call (Linux /proc counters). `--out FILE` also writes the JSON result
(docs/bench/ keeps the runs docs/performance.md quotes).

    .venv/bin/python bench/bench_pipeline.py --files 6 --seconds 60 --repeats 3 --hour
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

from singer_zoo.audio import RESAMPLE_QUALITY, audio_info, stream_audio
from singer_zoo.batch import Workers, run_batch
from singer_zoo.config import FeatureConfig
from singer_zoo.data import read_manifest
from singer_zoo.data.synthetic import write_recording
from singer_zoo.features import chop, extract_features, extract_windows

CFG = FeatureConfig()
OURS = functools.partial(extract_windows, cfg=CFG)  # our pipeline, picklable for processes
PROCESSES = Workers(2, processes=True)
NATIVE = 44100
# pause before each timed run, so that none starts while the previous one's threads still spin
# (librosa's BLAS after its Mel product): decode alone on 2 threads, which runs right after
# librosa, took 0.24-0.26 s without it and 0.22 s with it (alternating runs, FLAC files)
SETTLE_S = 0.5


def voice_like(seconds: float, seed: int, sr: int = NATIVE) -> np.ndarray:
    """(samples, 2) float32: a vibrato harmonic tone with noise, slightly different per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(150, 400) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 10)) * 0.25 * (1 + 0.3 * np.sin(0.5 * t))
    y += 0.01 * rng.standard_normal(len(t))
    return np.stack([y, 0.8 * y], axis=1).astype(np.float32)


def make_files(folder: Path, n: int, seconds: float, fmt: str) -> list[Path]:
    paths = [folder / f"song{i}.{fmt}" for i in range(n)]
    for i, path in enumerate(paths):
        write_recording(path, voice_like(seconds, i), NATIVE, fmt)
    return paths


def librosa_windows(path) -> np.ndarray:
    y, _ = librosa.load(path, sr=CFG.sample_rate)
    return librosa_features(y)


def librosa_features(y: np.ndarray) -> np.ndarray:
    s = librosa.feature.melspectrogram(y=y, sr=CFG.sample_rate, n_fft=CFG.n_fft,
                                       hop_length=CFG.hop_length, n_mels=CFG.n_bins,
                                       htk=True, norm=None, power=2.0)
    return chop((librosa.power_to_db(s, ref=np.max, top_db=CFG.top_db) + CFG.top_db).T, CFG)


def timed(fn, settle: float = 0.0) -> float:
    time.sleep(settle)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stage_split(paths, rates: dict, with_librosa: bool) -> dict:
    """Seconds per stage summed over the files, each stage timed on its own: decode (to
    mono at the file's native rate), resample (to 22.05 kHz, same soxr quality), features
    (22.05 kHz waveform -> windows)."""
    out = dict.fromkeys([f"{who}_{stage}" for who in ["ours", "librosa"][:1 + with_librosa]
                         for stage in ("decode", "resample", "features")], 0.0)
    for p in paths:
        blocks, rate = [], rates[p]
        out["ours_decode"] += timed(lambda: blocks.extend(stream_audio(p, sr=rate)))
        native, y = np.concatenate(blocks), []
        out["ours_resample"] += timed(lambda: y.append(
            soxr.resample(native, rate, CFG.sample_rate, quality=RESAMPLE_QUALITY)))
        out["ours_features"] += timed(lambda: chop(extract_features(y[0], CFG), CFG))
        if not with_librosa:
            continue
        native = []
        out["librosa_decode"] += timed(lambda: native.append(librosa.load(p, sr=None)[0]))
        out["librosa_resample"] += timed(lambda: y.append(librosa.resample(
            native[0], orig_sr=rate, target_sr=CFG.sample_rate)))
        out["librosa_features"] += timed(lambda: librosa_features(y[1]))
    return out


def throughput(paths, repeats: int, with_librosa: bool = True) -> dict:
    """Best-of-`repeats` wall times of the pipelines over `paths`, and their ratios."""
    infos = {p: audio_info(p) for p in paths}
    rates = {p: i.sample_rate for p, i in infos.items()}
    runs = {"decode_only_batch2": lambda: run_batch(
                lambda p: sum(map(len, stream_audio(p, sr=rates[p]))), paths, workers=2),
            "ours_batch2": lambda: run_batch(OURS, paths, workers=2),
            "ours_processes2": lambda: run_batch(OURS, paths, workers=PROCESSES),
            "ours_sequential": lambda: [OURS(p) for p in paths]}
    if with_librosa:
        runs["librosa"] = lambda: [librosa_windows(p) for p in paths]
    OURS(paths[0])  # warm up (trace, caches)
    run_batch(OURS, (paths * 2)[:8], workers=PROCESSES)  # start and warm both worker processes
    if with_librosa:
        librosa_windows(paths[0])
    best, split = dict.fromkeys(runs, np.inf), None
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], timed(run, settle=SETTLE_S))
        s = stage_split(paths, rates, with_librosa)
        split = s if split is None else {k: min(v, s[k]) for k, v in split.items()}
    audio_s = sum(i.duration for i in infos.values())
    res = {f"{k}_x_realtime": audio_s / v for k, v in best.items()}
    res.update({f"{k}_s": v for k, v in best.items()})
    if with_librosa:
        res["speedup_batch2"] = best["librosa"] / best["ours_batch2"]
        res["speedup_processes2"] = best["librosa"] / best["ours_processes2"]
        res["speedup_sequential"] = best["librosa"] / best["ours_sequential"]
        # the bound for any pipeline that decodes with the same library on the same 2 threads
        res["speedup_bound_decode_only"] = best["librosa"] / best["decode_only_batch2"]
    else:
        res["librosa"] = "cannot read these files (librosa 0.11 has no AAC decoder here)"
    res["split_s"] = split
    res["audio_seconds"] = audio_s
    return res


def manifest_files(manifest: str) -> list[str]:
    """The recordings of a manifest that our pipeline accepts (the others are reported on
    stderr and left out of both pipelines, so both process the same audio)."""
    paths = [r.path for r in read_manifest(manifest, splits=None)]
    res = run_batch(OURS, paths, workers=2)
    if res.failed:
        print(res.report(), file=sys.stderr)
    return list(res.ok)


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (Linux), e.g. VmRSS (now) or VmHWM (peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(path: str) -> None:
    """Run in a fresh process: print resident memory (MB) after imports and a warm-up call,
    and the peak while extracting `path` (the peak counter is reset after the warm-up)."""
    extract_features(np.sin(np.arange(50000) / 10).astype(np.float32), CFG)  # warm up
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status_mb("VmRSS")
    feats = []
    t = timed(lambda: feats.append(extract_features(path, CFG)))
    print(json.dumps({"baseline_mb": base, "peak_mb": _status_mb("VmHWM"), "seconds": t,
                      "features_mb": feats[0].nbytes / 2**20}))


def hour_memory(folder: Path) -> dict:
    path = folder / "hour.wav"
    minute = voice_like(60.0, 0)
    with sf.SoundFile(path, "w", NATIVE, 2, subtype="PCM_16") as f:
        for i in range(60):  # one generated minute, at 60 levels
            f.write(minute * (0.5 + i / 120))
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(path)],
                         capture_output=True, text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["file_mb"] = path.stat().st_size / 2**20
    path.unlink()
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--format", choices=["flac", "wav", "m4a"], default="flac",
                    help="generated files' format; m4a (AAC) measures ours only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--manifest", help="benchmark the recordings of this manifest (real files, "
                                       "native formats and rates) instead of generated ones")
    ap.add_argument("--hour", action="store_true", help="also measure one-hour peak memory")
    ap.add_argument("--out", help="also write the JSON result to this file (e.g. "
                                  "docs/bench/pipeline_flac.json)")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        return memory_child(args.memory_child)
    with tempfile.TemporaryDirectory() as tmp:
        if args.manifest:
            paths = manifest_files(args.manifest)
            files = f"{len(paths)} recordings of {args.manifest}"
        else:
            paths = make_files(Path(tmp), args.files, args.seconds, args.format)
            files = f"{args.files} x {args.seconds:g} s, 44.1 kHz stereo {args.format}"
        res = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{platform.processor() or platform.machine()}, "
                          f"{len(os.sched_getaffinity(0))} cores",
               "files": files, "load_average_before": os.getloadavg()[0]}
        res.update(throughput(paths, args.repeats, with_librosa=args.format != "m4a"
                              or bool(args.manifest)))
        res["load_average_after"] = os.getloadavg()[0]
        if args.hour:
            res["hour"] = hour_memory(Path(tmp))
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
