"""Peak memory of embedding one long recording with `load(...).embed(path)`, over the loaded
model, for 1- to 60-minute files; side by side with the way it was done before (the whole
waveform decoded, every window built, then embedded 64 at a time).

    PYTHONPATH=. python bench/bench_long_memory.py [--minutes 1 10 30 60] [--model NAME]

Each measurement runs in a fresh process: load the model, warm both embedding paths up
(a 10-s and a 3-min file), read the resident set (VmRSS, "model"), reset the peak
(`/proc/self/clear_refs` 5), embed the long file and read the peak (VmHWM). The files are
16-bit mono WAVs at 22050 Hz of a sung-like tone, written block by block to a temporary
folder. Figures are in docs/performance.md ("Memory").
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
CHILD = r"""
import json, sys, time
import numpy as np
import singer_zoo
from singer_zoo import inference
from singer_zoo.audio import load_audio
from singer_zoo.features import extract_windows

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024  # MiB

model, path, mode, warm_short, warm_long = sys.argv[1:6]
emb = singer_zoo.load(model)
emb.embed(warm_short)
emb.embed(warm_long)

def before(p):  # the code this replaced: whole waveform, every window, 64 at a time
    windows = extract_windows(load_audio(p, emb.sample_rate), emb.features)
    return np.concatenate([emb.embed_windows(windows[i:i + 64])
                           for i in range(0, len(windows), 64)]).mean(0)

run = emb.embed if mode == "now" else before
run(warm_long)
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
t = time.perf_counter()
vec = run(path)
print(json.dumps({"model_mib": base, "peak_mib": status("VmHWM"),
                  "seconds": time.perf_counter() - t, "finite": bool(np.isfinite(vec).all())}))
"""


def write_recording(path: Path, minutes: float) -> Path:
    """A 16-bit WAV of `minutes` of a harmonic tone with vibrato, written a minute at a time."""
    n = int(minutes * 60 * SR)
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as f:
        for start in range(0, n, 60 * SR):
            t = np.arange(start, min(start + 60 * SR, n)) / SR
            vibrato = 0.9 * np.sin(2 * np.pi * 5 * t)  # FM: +-2 % of f0 at 5 Hz
            y = sum(0.3 / k * np.sin(2 * np.pi * k * 220 * t + k * vibrato) for k in range(1, 5))
            f.write(y.astype(np.float32))
    return path


def measure(model: str, path: Path, mode: str, warm: tuple[Path, Path]) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, model, str(path), mode, *map(str, warm)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30, 60])
    p.add_argument("--model", default="mobile_resnext_attention")
    p.add_argument("--before", action="store_true",
                   help="also measure the whole-waveform way it was done before")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="long_memory.") as tmp:
        tmp = Path(tmp)
        warm = (write_recording(tmp / "warm10s.wav", 10 / 60),
                write_recording(tmp / "warm3min.wav", 3))
        print("| minutes | way | model (MiB) | peak (MiB) | over the model (MiB) | seconds |")
        print("|---|---|---|---|---|---|")
        for minutes in args.minutes:
            path = write_recording(tmp / f"long{minutes:g}.wav", minutes)
            for mode in ("now", "before") if args.before else ("now",):
                r = measure(args.model, path, mode, warm)
                assert r["finite"]
                print(f"| {minutes:g} | {mode} | {r['model_mib']:.0f} | {r['peak_mib']:.0f} | "
                      f"{r['peak_mib'] - r['model_mib']:+.0f} | {r['seconds']:.1f} |",
                      flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
