"""Peak memory of `stream_audio` vs `load_audio` (vs a naive `soundfile.read`) on a long file.

Writes a generated N-minute 44.1 kHz stereo 16-bit FLAC (default 60 min: a 440 Hz tone plus
noise) to a temporary folder, then runs each reader in a fresh subprocess and reports its peak
resident memory (VmHWM, reset after the imports through /proc/self/clear_refs, so the
imports' transient peak does not hide the reader's) above the resident memory once the
imports are done (VmRSS), and the wall time. Linux only. The file is deleted afterwards
unless --keep is given.

    .venv/bin/python bench/bench_audio_memory.py [--minutes 60] [--keep] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

SR_IN, SR_OUT = 44100, 22050
MODES = ("stream_audio", "load_audio", "soundfile.read")


def write_long_flac(path: str, minutes: float) -> None:
    """A `minutes`-long stereo FLAC, written one minute at a time (bounded memory)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SR_IN, 2, subtype="PCM_16", format="FLAC") as f:
        done = 0
        while done < minutes * 60 * SR_IN:
            n = int(min(60 * SR_IN, minutes * 60 * SR_IN - done))
            t = (done + np.arange(n)) / SR_IN
            x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n)
            f.write(np.stack([x, 0.5 * x], axis=1).astype(np.float32))  # (n, 2)
            done += n


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM") in MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def child(mode: str, path: str) -> None:
    """Run one reader and print {mode, base_mb, peak_mb, seconds, samples} as JSON."""
    from singer_zoo import audio

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size
    base = status_mb("VmRSS")
    start = time.perf_counter()
    if mode == "stream_audio":
        samples = sum(len(block) for block in audio.stream_audio(path, sr=SR_OUT))
    elif mode == "load_audio":
        samples = len(audio.load_audio(path, sr=SR_OUT))
    else:
        samples = len(sf.read(path, dtype="float32")[0])
    print(json.dumps(dict(mode=mode, base_mb=base, peak_mb=status_mb("VmHWM"), samples=samples,
                          seconds=time.perf_counter() - start)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true", help="keep the generated FLAC")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    path = os.path.join(a.dir, f"singer_zoo_bench_{a.minutes:g}min.flac")
    t0 = time.perf_counter()
    write_long_flac(path, a.minutes)
    print(f"wrote {path}: {a.minutes:g} min, {os.path.getsize(path) / 2**20:.0f} MiB, "
          f"{time.perf_counter() - t0:.0f} s")
    out_mb = a.minutes * 60 * SR_OUT * 4 / 2**20
    print(f"result size (float32 mono {SR_OUT} Hz): {out_mb:.0f} MiB")
    print("resident memory in MiB")
    print(f"{'reader':<16}{'after imports':>14}{'peak':>8}{'peak - imports':>16}{'time (s)':>10}")
    try:
        for mode in MODES:
            res = subprocess.run([sys.executable, __file__, "--child", mode, path],
                                 capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{mode:<16}{r['base_mb']:>14.0f}{r['peak_mb']:>8.0f}"
                  f"{r['peak_mb'] - r['base_mb']:>16.0f}{r['seconds']:>10.1f}")
    finally:
        if not a.keep:
            os.remove(path)


if __name__ == "__main__":
    main()
