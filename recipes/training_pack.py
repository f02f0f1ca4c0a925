"""Build the training pack and the held-out evaluation sets of issue 17 (data engine).

    python recipes/training_pack.py --out runs/engine   # 28 min here (4 workers, 2 shared cores)

1. installs what it needs from Debian when missing: sox, flite, Festival with
   --no-install-recommends (its recommends pull in the reserved kal voice), the Festival
   voices festvox-us-slt-hts and festvox-ca-ona-hts, and unpacks hedgewars-data's voice packs
   (`apt-get download` + `dpkg-deb -x`, nothing installed); builds the Debian voices corpus
   (/work/shared/data/debian_voices/build.py) when its manifest is missing;
2. splits the voices speaker-disjointly:
   - training: the 14 Debian-voices speakers of the corpus's training split (see
     docs/real_voices.md), Festival's slt (US English) and ona (Catalan) HTS voices saying
     each song's lyrics, the 15 hedgewars voice packs, and 24 synthetic singers (each
     identity sings 5 songs); every real voice gives itself plus 5 pseudo-singers (pitch,
     vocal-tract length, speed); with --spoken N each identity of a recorded or TTS voice
     also speaks N performances (its own, shifted speaking voice);
   - held out (never in the pack): the 10 Debian-voices speakers of the corpus's validation
     and test splits (the exported embedders never trained on them either) and flite's awb
     and rms voices;
3. streams the training plan (songs of seed 0) through the engine with room reverberation and
   noise into OUT/train_pack.npz (uint8 Mel features, labels; `singer_zoo.data.pack`);
4. writes the held-out sets as audio + manifest: OUT/heldout/sung (awb, rms and 8 held-out
   speakers singing 20 songs of seed 1000, which the pack never uses; clean),
   OUT/heldout/sung_rooms (the same performances through rooms and noise of a room bank of
   the held-out seed) and OUT/heldout/speech (the 10 held-out speakers' recordings of the
   corpus, as they are).

Load the pack with numpy only:
    from singer_zoo.data.pack import read_pack
    pack = read_pack("runs/engine/train_pack.npz")
    fs, singers, songs = pack.feature_set()
"""
from __future__ import annotations

import argparse
import csv
import functools
import glob
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from singer_zoo import get_config
from singer_zoo.audio import load_audio
from singer_zoo.data.engine import (
    AugmentConfig,
    Augmenter,
    FileVoice,
    Plan,
    SyntheticVoice,
    TextVoice,
    pack_stream,
    performances,
    pseudo_singers,
)
from singer_zoo.data.engine.stream import Identity, key
from singer_zoo.data.pack import merge_packs, read_pack
from singer_zoo.data.synthetic import write_recording
from singer_zoo.errors import AudioError

SR = 22050
DEBIAN_TRAIN = ("allison", "armelle", "carlo", "es_co", "fillets_cs_bigfish",
                "fillets_cs_smallfish", "fillets_nl_bigfish", "fillets_nl_smallfish",
                "ivrvoiceru", "june", "ktub_ca", "ktub_da", "ktub_de", "ktub_el")
DEBIAN_HELDOUT = ("ktub_en", "ktub_fr", "ktub_gl", "ktub_lt", "ktub_ru", "ktub_sl", "ktub_uk",
                  "ktub_wa", "menardi", "msu_ru_nsh")
SUNG_HELDOUT = ("ktub_en", "ktub_fr", "ktub_gl", "ktub_lt", "ktub_sl", "ktub_uk", "menardi",
                "msu_ru_nsh")  # + flite awb and rms: 10 voices
FESTIVAL = {"slt": "cmu_us_slt_arctic_hts", "ona": "upc_ca_ona_hts"}
APT = ("sox", "flite", "festvox-us-slt-hts", "festvox-ca-ona-hts")
HEDGEWARS = "usr/share/games/hedgewars/Data/Sounds/voices"
HELDOUT_SEED = 1000


def ensure_packages(work: Path) -> Path:
    """Install the Debian tools and voices (Festival without recommends); return the
    hedgewars voices folder."""
    if shutil.which("festival") is None or not os.path.isdir(
            "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "festival",
                        *APT], check=True)
    hw = work / "hedgewars"
    if not (hw / HEDGEWARS).is_dir():
        hw.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-qq", "hedgewars-data"], cwd=hw, check=True)
        deb = max(glob.glob(str(hw / "hedgewars-data_*.deb")))
        subprocess.run(["dpkg-deb", "-x", deb, str(hw)], check=True)
    return hw / HEDGEWARS


def festival(voice: str, text: str) -> np.ndarray:
    """`text` said by a named Festival voice (never the default one), at SR."""
    with tempfile.TemporaryDirectory() as tmp:
        script, wav = Path(tmp) / "say.scm", Path(tmp) / "say.wav"
        script.write_text(f'(voice_{voice})\n(set! u (utt.synth (Utterance Text "{text}")))\n'
                          f'(utt.save.wave u "{wav}" (quote riff))\n')
        subprocess.run(["festival", "--batch", str(script)], check=True,
                       capture_output=True)
        return load_audio(wav, SR)


def flite(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
        return load_audio(wav, SR)


@functools.lru_cache(maxsize=256)
def load(path: str) -> np.ndarray:
    return load_audio(path, SR)


def file_voice(name: str, source: str, paths) -> FileVoice:
    """The recordings of one speaker that decode (a bad or silent file is skipped, said)."""
    good, seconds = [], []
    for p in sorted(paths):
        try:
            seconds.append(len(load(p)) / SR)
            good.append(p)
        except AudioError as e:
            print(f"skipped: {e}", flush=True)
    return FileVoice(name, source, tuple(good), tuple(seconds), load)


def debian_rows(manifest: Path) -> dict:
    rows = {}
    with open(manifest, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["singer"], []).append(
                (str(manifest.parent / r["path"]), r["source"]))
    return rows


def training_plan(args, debian: dict, hedgewars: Path) -> Plan:
    deb = [file_voice(name, "debian:" + debian[name][0][1], [p for p, _ in debian[name]])
           for name in DEBIAN_TRAIN]
    tts = [TextVoice(f"tts_{n}", f"festival:{v}", functools.partial(festival, v))
           for n, v in FESTIVAL.items()]
    hw = [file_voice(f"hw_{pack}", "hedgewars",
                     sorted(glob.glob(str(hedgewars / pack / "*.ogg")))[:args.max_files])
          for pack in sorted(os.listdir(hedgewars))]
    voices = interleave(deb, hw, tts)
    identities, songs = [], {}
    for v in voices:
        rng = np.random.default_rng([args.seed, 10, key(v.name)])
        pool = rng.choice(args.songs, args.songs_per_voice, replace=False)
        for ident in pseudo_singers(v.name, args.pseudo, rng):
            identities.append(ident)
            songs[ident.name] = sorted(int(s) for s in
                                       rng.choice(pool, args.songs_per_singer, replace=False))
    for i in range(args.synthetic):
        v = SyntheticVoice(f"synth{i:02d}", i, corpus_seed=args.seed)
        rng = np.random.default_rng([args.seed, 11, i])
        voices.append(v)
        identities.append(Identity(v.name, v.name))
        songs[v.name] = sorted(int(s) for s in
                               rng.choice(args.songs, args.songs_per_singer, replace=False))
    return Plan(tuple(voices), tuple(identities), songs, args.seed, args.seconds, SR,
                args.spoken)


def heldout_sung_plan(args, debian: dict) -> Plan:
    voices = [file_voice(n, "debian:" + debian[n][0][1], [p for p, _ in debian[n]])
              for n in SUNG_HELDOUT]
    voices += [TextVoice(f"flite_{v}", f"flite:{v}", functools.partial(flite, v))
               for v in ("awb", "rms")]
    idents = tuple(pseudo_singers(v.name, 1, np.random.default_rng([HELDOUT_SEED, key(v.name)]))
                   [0] for v in voices)
    return Plan(tuple(voices), idents, {i.name: list(range(20)) for i in idents},
                HELDOUT_SEED, args.heldout_seconds, SR)


def write_heldout(args, debian: dict, out: Path) -> None:
    """OUT/sung (clean), OUT/sung_rooms (the same performances through rooms and noise of a
    held-out room bank, as karaoke recordings from different phones and rooms are) and
    OUT/speech (the held-out speakers' corpus recordings as they are)."""
    sung, rooms = out / "sung", out / "sung_rooms"
    if not (rooms / "manifest.csv").exists():
        for d in (sung, rooms):
            (d / "audio").mkdir(parents=True, exist_ok=True)
        augmenter = Augmenter(AugmentConfig(), SR, HELDOUT_SEED)
        clean, reverberant = [], []
        for p in performances(heldout_sung_plan(args, debian)):
            name = p.recording.replace("|", "_")
            row = {"path": f"audio/{name}.wav", "singer": p.singer, "song": p.song,
                   "recording": name, "source": p.source}
            write_recording(sung / "audio" / f"{name}.wav", p.audio, SR, "wav")
            y, how = augmenter(p.audio, np.random.default_rng([HELDOUT_SEED, key(name)]))
            write_recording(rooms / "audio" / f"{name}.wav", y, SR, "wav")
            clean.append(row)
            reverberant.append({**row, "source": f"{p.source}+{how}"})
        write_manifest(sung / "manifest.csv", clean)
        write_manifest(rooms / "manifest.csv", reverberant)
    speech = out / "speech"
    speech.mkdir(parents=True, exist_ok=True)
    rows = [{"path": p, "singer": n, "song": "", "recording": f"{n}_{i:02d}", "source": s}
            for n in DEBIAN_HELDOUT for i, (p, s) in enumerate(debian[n])]
    write_manifest(speech / "manifest.csv", rows)


def write_manifest(path: Path, rows: list) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "singer", "song", "recording", "source"])
        w.writeheader()
        w.writerows(rows)


_JOB = None


def pack_voice(name: str) -> str:
    """Pack every performance of one voice's identities into OUT/voices/<voice>.npz."""
    plan, augmenter, parts, features, t0 = _JOB
    voice = next(v for v in plan.voices if v.name == name)
    idents = tuple(i for i in plan.identities if i.voice == name)
    sub = Plan((voice,), idents, {i.name: plan.songs[i.name] for i in idents}, plan.seed,
               plan.seconds, plan.sr, plan.spoken)
    pack_stream(performances(sub, augmenter), parts / f"{name}.npz", features)
    return f"{name}: {len(sub)} recordings, {time.time() - t0:.0f}s"


def interleave(*groups) -> list:
    """a1, b1, c1, a2, b2, ...: a partial build holds every kind of voice."""
    out = []
    for i in range(max(map(len, groups))):
        out += [g[i] for g in groups if i < len(g)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/engine")
    ap.add_argument("--debian", default="/tmp/debian_voices")
    ap.add_argument("--work", default="/tmp/engine_sources", help="unpacked Debian voices")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=7.5, help="length of a training performance")
    ap.add_argument("--heldout-seconds", type=float, default=7.5,
                    help="length of a held-out sung performance")
    ap.add_argument("--songs", type=int, default=150, help="training songs (of the seed)")
    ap.add_argument("--songs-per-voice", type=int, default=12)
    ap.add_argument("--songs-per-singer", type=int, default=5)
    ap.add_argument("--pseudo", type=int, default=6, help="identities per real voice")
    ap.add_argument("--synthetic", type=int, default=24)
    ap.add_argument("--spoken", type=int, default=0,
                    help="spoken performances per identity of a recorded or TTS voice")
    ap.add_argument("--max-files", type=int, default=30, help="recordings per hedgewars voice")
    ap.add_argument("--features", metavar="ROW",
                    help="extract the features of this zoo row's front end (default: the "
                         "default FeatureConfig, which most rows share)")
    ap.add_argument("--skip-heldout", action="store_true")
    ap.add_argument("--jobs", type=int, default=4, help="voices packed in parallel")
    ap.add_argument("--merge-only", action="store_true",
                    help="only merge the voices packed so far into the pack")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hedgewars = ensure_packages(Path(args.work))
    manifest = Path(args.debian) / "manifest.csv"
    if not manifest.exists():
        subprocess.run([sys.executable, "/work/shared/data/debian_voices/build.py",
                        args.debian], check=True)
    debian = debian_rows(manifest)
    if args.merge_only:  # e.g. while the build still runs
        merge(out, sorted((out / "voices").glob("*.npz")), None, args)
        return
    if not args.skip_heldout:
        write_heldout(args, debian, out / "heldout")
        print("held-out sets written to", out / "heldout", flush=True)
    plan = training_plan(args, debian, hedgewars)
    parts = out / "voices"  # one pack per voice: built in parallel, a rerun resumes
    parts.mkdir(exist_ok=True)
    todo = [v for v in plan.voices if not (parts / f"{v.name}.npz").exists()]
    global _JOB  # the forked workers inherit the plan, the loaded audio and the room bank
    features = get_config(args.features).features if args.features else None
    _JOB = (plan, Augmenter(AugmentConfig(), SR, args.seed), parts, features, time.time())
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for line in pool.imap_unordered(pack_voice, [v.name for v in todo]):
            print(line, flush=True)
    done = [parts / f"{v.name}.npz" for v in plan.voices if (parts / f"{v.name}.npz").exists()]
    merge(out, done, len(plan.voices), args)


def merge(out: Path, done: list, planned: int, args) -> None:
    """OUT/train_pack.npz from the voices packed so far, and its summary beside it."""
    stats = {"voices": len(done), "voices_planned": planned,
             "seed": args.seed, "seconds": args.seconds}
    path = merge_packs(done, out / "train_pack.npz", extra={"plan": stats})
    pack = read_pack(path)
    stats.update(identities=len(pack.singer_names), songs=len(pack.song_names),
                 recordings=pack.n_recordings, hours=pack.hours, sources=pack.source_names,
                 mib=path.stat().st_size / 2 ** 20)
    (out / "train_pack.json").write_text(json.dumps(stats, indent=1))
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
