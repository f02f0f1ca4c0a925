"""Distributed tuning with keras-tuner's chief/worker mode: a chief oracle and two workers
on 127.0.0.1 (subprocesses of `singer-zoo tune`, a free port, loopback only)."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

MAX_TRIALS = 4
TIMEOUT_S = 420  # for the whole search; each process is killed after it

SPACE = {
    "base": {"name": "tiny", "table": "beyond",
             "features": {"n_bins": 32, "window_frames": 64, "window_hop_frames": 32},
             "arch": {"block": "vanilla", "stem_filters": 4, "stages": [[8]],
                      "stem_kernel": 3, "kernel": 3, "aggregation": "average",
                      "dense_units": 8, "dense_layers": 1, "embedding_dim": 4},
             "train": {"task": "siamese", "batch_size": 8, "validation_every": 1,
                       "patience": 5}},
    "train": {"max_epochs": 2, "steps_per_epoch": 2},
    "hyperparameters": {"dense_units": {"int": [8, 32], "step": 8},
                        "learning_rate": {"float": [1.0e-4, 1.0e-2], "sampling": "log"}},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tune_process(tuner_id: str, port: int, args, log_path):
    """`singer-zoo tune ARGS` as tuner `tuner_id`, talking to the oracle on 127.0.0.1:port."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy")}
    env.update(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
               KERASTUNER_ORACLE_PORT=str(port), NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2")
    code = "import sys; from singer_zoo.cli import main; sys.exit(main())"
    log = open(log_path, "w", encoding="utf-8")
    return subprocess.Popen([sys.executable, "-c", code, "tune", *map(str, args)], env=env,
                            stdout=log, stderr=subprocess.STDOUT), log


@pytest.mark.slow
def test_chief_and_two_workers_share_the_trials(tmp_path):
    from singer_zoo.data import generate_corpus, read_manifest
    from singer_zoo.data.manifest import Manifest
    from singer_zoo.registry import get_config

    m = read_manifest(generate_corpus(tmp_path / "corpus", n_singers=4, n_songs=2, seconds=7))
    manifest = Manifest([dataclasses.replace(r, split="train" if r.song == "song00"
                                             else "validation") for r in m], m.root
                        ).write(tmp_path / "split.csv")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE), encoding="utf-8")
    out, port = tmp_path / "search", free_port()
    args = [space, "--data", manifest, "--out", out, "--tuner", "random", "--max-trials",
            MAX_TRIALS, "--verbose", "0"]
    procs = {}
    try:
        for tid in ("chief", "tuner0", "tuner1"):
            cache = ["--cache", tmp_path / f"cache_{tid}"]  # no shared cache: no races
            procs[tid] = tune_process(tid, port, [*args, *cache], tmp_path / f"{tid}.log")
        for proc, _ in procs.values():
            proc.wait(timeout=TIMEOUT_S)
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = {tid: (tmp_path / f"{tid}.log").read_text(encoding="utf-8") for tid in procs}
    for tid, (proc, _) in procs.items():
        assert proc.returncode == 0, f"{tid} failed:\n{logs[tid][-3000:]}"

    ran = {}
    for tid in ("tuner0", "tuner1"):
        line = [ln for ln in logs[tid].splitlines() if ln.startswith("worker finished")]
        assert line, logs[tid][-3000:]
        ran[tid] = int(line[-1].split("ran ")[1].split()[0])
    assert all(n >= 1 for n in ran.values()), ran  # both workers trained
    assert sum(ran.values()) == MAX_TRIALS  # no trial run twice
    trials = [json.loads(p.read_text()) for p in (out / "search").glob("trial_*/trial.json")]
    assert len(trials) == MAX_TRIALS and all(t["status"] == "COMPLETED" for t in trials)
    assert "0 trial(s) run by this process" in logs["chief"]  # the chief only serves
    best = get_config(out / "best_config.yaml")  # written by the chief at the end
    best_trial = min(trials, key=lambda t: t["score"])
    assert best.arch.dense_units == best_trial["hyperparameters"]["values"]["dense_units"]
