"""The benchmarks in bench/ run end to end at tiny sizes and print what docs/ quotes.

Speed is not asserted (CI machines are shared); structure and the values that do not
depend on speed (exactness of a flat index, agreement of float32 TFLite with itself) are.
"""
from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_bench(script: str, *args: str, cwd=None) -> str:
    res = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                         text=True, cwd=cwd, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def table_rows(out: str) -> list[list[str]]:
    """Cells of the markdown table rows in `out`, header and rule lines excluded."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in out.splitlines() if line.startswith("|")]
    return [r for r in rows[2:] if not set("".join(r)) <= set("-")]


def test_bench_pipeline_reports_both_pipelines_and_the_bound(tmp_path):
    out = run_bench("bench_pipeline.py", "--files", "1", "--seconds", "7", "--repeats", "1",
                    "--format", "wav", "--out", str(tmp_path / "res.json"))
    res = json.loads(out[out.index("{"):])
    assert json.loads((tmp_path / "res.json").read_text()) == res
    for key in ("ours_batch2_s", "ours_processes2_s", "ours_sequential_s", "librosa_s",
                "decode_only_batch2_s", "speedup_batch2", "speedup_processes2",
                "speedup_sequential", "speedup_bound_decode_only"):
        assert math.isfinite(res[key]) and res[key] > 0, key
    assert res["audio_seconds"] == 7
    assert set(res["split_s"]) == {f"{who}_{stage}" for who in ("ours", "librosa")
                                   for stage in ("decode", "resample", "features")}


def test_bench_pipeline_pauses_before_each_timed_run_outside_the_timing(monkeypatch,
                                                                       write_audio):
    monkeypatch.syspath_prepend(str(BENCH))
    bench = importlib.import_module("bench_pipeline")
    start = time.perf_counter()
    took = bench.timed(lambda: None, settle=0.3)
    assert time.perf_counter() - start >= 0.3 and took < 0.1
    # every timed pipeline run of every round asks for the pause (the stage split does not)
    settles, timed = [], bench.timed
    monkeypatch.setattr(bench, "timed", lambda fn, settle=0.0: settles.append(settle) or
                        timed(fn))
    monkeypatch.setattr(bench, "run_batch", lambda fn, items, workers: [fn(p) for p in items])
    path = write_audio("a.wav", 0.1 * np.sin(np.arange(22050) / 5), 22050)
    bench.throughput([path], repeats=2)
    assert settles.count(bench.SETTLE_S) == 2 * 5  # 2 rounds x 5 pipelines


def test_bench_pipeline_on_m4a_measures_ours_only():
    out = run_bench("bench_pipeline.py", "--files", "1", "--seconds", "3", "--repeats", "1",
                    "--format", "m4a")
    res = json.loads(out[out.index("{"):])
    assert "librosa_s" not in res and "speedup_batch2" not in res
    assert "cannot read" in res["librosa"]
    assert set(res["split_s"]) == {"ours_decode", "ours_resample", "ours_features"}
    assert res["ours_batch2_x_realtime"] > 0 and res["audio_seconds"] == pytest.approx(3, abs=0.1)


def test_bench_pipeline_on_a_manifest_leaves_out_refused_files(tmp_path, write_audio):
    t = np.arange(16000 * 3) / 16000
    write_audio("a.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    write_audio("b.flac", 0.3 * np.sin(2 * np.pi * 330 * t[:16000 * 2]), 16000)
    write_audio("quiet.wav", np.zeros(16000), 16000)
    (tmp_path / "m.csv").write_text("path,singer\na.wav,x\nb.flac,y\nquiet.wav,z\n")
    res = subprocess.run([sys.executable, str(BENCH / "bench_pipeline.py"), "--manifest",
                          str(tmp_path / "m.csv"), "--repeats", "1"], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["files"].startswith("2 recordings of")
    assert out["audio_seconds"] == pytest.approx(5.0)
    assert "quiet.wav: all silent" in res.stderr
    assert out["speedup_batch2"] > 0


def test_bench_audio_memory_measures_every_reader(tmp_path):
    out = run_bench("bench_audio_memory.py", "--minutes", "0.1", "--dir", str(tmp_path))
    readers = {line.split()[0] for line in out.splitlines()[4:]}
    assert readers == {"stream_audio", "load_audio", "soundfile.read"}
    assert not list(tmp_path.iterdir())  # the generated file is removed


def test_bench_index_picks_an_exact_flat_index_when_small():
    rows = table_rows(run_bench("bench_index.py", "--sizes", "2000", "--queries", "5"))
    assert rows == [rows[0]] and rows[0][:3] == ["random 128-d", "2,000", "flat (exact)"]
    assert rows[0][-1] == "1.000"


def test_bench_models_prints_a_row_per_model():
    rows = table_rows(run_bench("bench_models.py", "--rows", "mobile_resnext_attention",
                                "--steps", "1", "--calls", "2", "--warmup", "1"))
    assert len(rows) == 1 and rows[0][0] == "`mobile_resnext_attention`"
    assert all(float(c.rstrip("x")) > 0 for c in rows[0][1:])


@pytest.mark.slow
def test_bench_export_compares_every_tflite_mode():
    rows = table_rows(run_bench("bench_export.py", "--rows", "mobile_resnext_attention",
                                "--calls", "2"))
    files = [r[1] for r in rows]
    assert files == ["SavedModel (all threads)", "TFLite float32 (1 thread)",
                     "TFLite int8 (1 thread)", "TFLite full-int8 (1 thread)"]
    assert rows[1][5] == "1.0000"  # float32 against itself
    assert all(0.9 < float(r[5]) <= 1.0 for r in rows[1:])
