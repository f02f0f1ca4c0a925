"""Measurements behind the data engine's library choices (docs/training_data.md).

1. Speech -> singing: pyworld (WORLD vocoder, `singer_zoo.data.engine.singing.sing`) against
   praat-parselmouth (PSOLA: Praat's Manipulation with the same melody as a pitch tier and
   the same time map as a duration tier). Per method: seconds of CPU per second of singing,
   and how closely the result follows the melody: median |cents| between the target f0 and
   librosa's pYIN f0 of the output, over frames voiced in both.
2. Room reverberation: a pyroomacoustics image-source impulse response (simulated once into
   a bank, then FFT-convolved per clip) against pedalboard's algorithmic Reverb per clip:
   milliseconds per 7.5-s clip, and the RT60 measured on each method's impulse response
   against the one asked for (pedalboard has no RT60 parameter: room_size is swept).
   audiomentations is not measured: it requires soxr < 1.0, against the package's pin 1.1.0.

    python bench/bench_engine.py [--speech FILE.wav]   # default input: a synthetic singer
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def speech_input(path, sr):
    from singer_zoo.audio import load_audio
    from singer_zoo.data import synthetic

    if path:
        return load_audio(path, sr)
    rng = np.random.default_rng(0)
    return synthetic.render(synthetic.singer_params(0, 1), synthetic.song_params(0, 0), 4.0,
                            sr, rng)


def cents_error(y, sr, target_f0, frame_s):
    import librosa

    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=900, sr=sr, hop_length=512)
    t = np.arange(len(f0)) * 512 / sr
    tgt = np.interp(t, np.arange(len(target_f0)) * frame_s, target_f0)
    tgt_on = np.interp(t, np.arange(len(target_f0)) * frame_s, (target_f0 > 0).astype(float))
    both = voiced & (tgt_on > 0.99) & (tgt > 0)
    return float(np.median(np.abs(1200 * np.log2(f0[both] / tgt[both])))), float(both.mean())


def target(an, song, seconds, seed):
    """The f0 and time map `sing` uses (same rng draws), for the PSOLA version."""
    from singer_zoo.data.engine import melody, singing

    rng = np.random.default_rng(seed)
    n_out = round(seconds * 1000 / singing.FRAME_MS)
    n_in = min(an.n_frames, int(n_out / singing.MIN_STRETCH))
    rng.integers(0, an.n_frames - n_in + 1)
    shift = melody.fit_register(song["midi"], an.median_f0)
    f0, sung, phase = melody.pitch_track(song, n_out, singing.FRAME_MS / 1000, rng, shift)
    return f0, singing.time_map(sung, phase, n_in)


def psola(y, sr, f0, pos, frame_s):
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(y.astype(np.float64), sr)
    manip = call(snd, "To Manipulation", 0.01, 60, 900)
    pitch = call(manip, "Extract pitch tier")
    call(pitch, "Remove points between", 0, snd.duration)
    dur = call(manip, "Extract duration tier")
    for k in range(0, len(f0), 4):  # 20 ms points
        t_in = pos[k] * frame_s
        if f0[k] > 0:
            call(pitch, "Add point", t_in, float(f0[k]))
        if k + 4 < len(pos) and pos[k + 4] > pos[k]:
            call(dur, "Add point", t_in, float(4 / (pos[k + 4] - pos[k])))
    call([pitch, manip], "Replace pitch tier")
    call([dur, manip], "Replace duration tier")
    out = call(manip, "Get resynthesis (overlap-add)")
    return out.values[0].astype(np.float32)


def bench_singing(y, sr, seconds=7.5, songs=4):
    from singer_zoo.data.engine import melody, singing

    rows = {"pyworld": [], "parselmouth": []}
    t0 = time.process_time()
    an = singing.analyse(y, sr)
    analyse_s = time.process_time() - t0
    for s in range(songs):
        song = melody.song(0, s)
        f0, pos = target(an, song, seconds, s)
        t0 = time.process_time()
        z = singing.sing(an, song, seconds, np.random.default_rng(s))
        rows["pyworld"].append((time.process_time() - t0 + analyse_s / songs,
                                *cents_error(z, sr, f0, singing.FRAME_MS / 1000)))
        t0 = time.process_time()
        z = psola(y, sr, f0, pos, singing.FRAME_MS / 1000)
        rows["parselmouth"].append((time.process_time() - t0,
                                    *cents_error(z, sr, f0, singing.FRAME_MS / 1000)))
    return {k: {"cpu_s_per_s": float(np.mean([r[0] for r in v]) / seconds),
                "median_abs_cents": float(np.mean([r[1] for r in v])),
                "voiced_share": float(np.mean([r[2] for r in v]))} for k, v in rows.items()}


def rt60(h, sr):
    import pyroomacoustics as pra

    return float(pra.experimental.measure_rt60(h, fs=sr, decay_db=30))


def bench_reverb(sr, seconds=7.5, n=8):
    from pedalboard import Pedalboard, Reverb
    from scipy.signal import fftconvolve

    from singer_zoo.data.engine.augment import room_impulse_response

    rng = np.random.default_rng(0)
    x = rng.standard_normal(int(seconds * sr)).astype(np.float32)
    out = {"pyroomacoustics": [], "pedalboard": []}
    for k in range(n):
        want = 0.2 + 0.7 * k / (n - 1)
        t0 = time.process_time()
        h = room_impulse_response(want, sr, rng)
        sim = time.process_time() - t0
        t0 = time.process_time()
        fftconvolve(x, h)[:len(x)]
        conv = time.process_time() - t0
        out["pyroomacoustics"].append({"rt60_asked": want, "rt60": rt60(h, sr),
                                       "simulate_ms": 1e3 * sim, "per_clip_ms": 1e3 * conv})
        board = Pedalboard([Reverb(room_size=k / (n - 1), wet_level=1.0, dry_level=0.0)])
        imp = np.zeros(4 * sr, np.float32)
        imp[0] = 1
        h = board(imp, sr)
        t0 = time.process_time()
        board(x, sr)
        per = time.process_time() - t0
        out["pedalboard"].append({"room_size": k / (n - 1), "rt60": rt60(h, sr),
                                  "per_clip_ms": 1e3 * per})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speech", help="a speech recording (default: a synthetic singer)")
    args = ap.parse_args(argv)
    sr = 22050
    y = speech_input(args.speech, sr)
    print(json.dumps({"input": args.speech or "synthetic", "singing": bench_singing(y, sr),
                      "reverb": bench_reverb(sr)}, indent=1))


if __name__ == "__main__":
    main()
