"""Distribution helpers: TF_CONFIG validation, strategies, chief/worker folders, mixed
precision; and two CPU workers on localhost training one model together (slow)."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.training import distribute as D


def _conf(task_type="worker", index=0, workers=("localhost:1234", "localhost:1235")):
    return json.dumps({"cluster": {"worker": list(workers)},
                       "task": {"type": task_type, "index": index}})


def test_parse_tf_config_accepts_a_valid_cluster():
    conf = D.parse_tf_config(_conf(index=1))
    assert conf["task"] == {"type": "worker", "index": 1}


@pytest.mark.parametrize("raw, message", [
    ("", "needs the TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "'cluster'"),
    (json.dumps({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}),
     "host:port"),
    (json.dumps({"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}),
     "neither 'worker' nor 'chief'"),
    (_conf(task_type="chief"), "task.type"),
    (_conf(index=2), "task.index"),
    (_conf(index="0"), "task.index"),
])
def test_parse_tf_config_rejects_malformed_values(raw, message):
    with pytest.raises(ConfigError, match=message):
        D.parse_tf_config(raw)


def test_multiworker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        D.make_strategy("multiworker")


def test_cli_reports_a_bad_tf_config_in_one_line(monkeypatch, tmp_path, capsys):
    from singer_zoo.cli import main

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}}')
    args = ["train", "t1_cnn_shallow_max", "--data", str(tmp_path / "m.csv"), "--out",
            str(tmp_path / "run"), "--strategy", "multiworker"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "singer-zoo: error: TF_CONFIG: 'task.type' must be one of ['worker'], got None")


def test_make_strategy_names(tmp_path):
    with pytest.raises(UnknownNameError, match="default, mirrored, multiworker"):
        D.make_strategy("tpu")
    default = D.make_strategy("default")
    assert default.num_replicas_in_sync == 1
    assert D.is_chief(default) and D.is_chief(None)
    assert D.worker_dir(tmp_path, default) == tmp_path
    mirrored = D.make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert D.is_chief(mirrored)
    assert D.global_batch_size(32, mirrored) == 32 * mirrored.num_replicas_in_sync
    assert D.global_batch_size(32, None) == 32


class _Replicas:
    """A strategy as `xla_supported` sees it: the replicas kept in sync."""

    def __init__(self, replicas):
        self.num_replicas_in_sync = replicas


@pytest.mark.parametrize("replicas, xla", [(1, True), (2, False), (8, False)])
def test_xla_only_with_one_replica(replicas, xla):
    assert D.xla_supported(_Replicas(replicas)) is xla
    assert D.xla_supported() is True  # the default strategy: one replica


def test_compile_model_follows_the_strategy(monkeypatch):
    from singer_zoo.models import DEFAULT_JIT_COMPILE
    from singer_zoo.registry import get_config
    from singer_zoo.training import trainer

    cfg = get_config("t1_cnn_shallow_max").replace(
        arch={"stem_filters": 4, "stages": ((8,),), "stem_kernel": 3, "kernel": 3,
              "dense_units": 16, "dense_layers": 1})
    assert trainer.compile_model(cfg, 3).jit_compile == DEFAULT_JIT_COMPILE
    monkeypatch.setattr(trainer, "xla_supported", lambda: False)
    assert trainer.compile_model(cfg, 3).jit_compile is False


class _FakeResolver:
    def __init__(self, cluster, task_type, task_id):
        self._cluster, self.task_type, self.task_id = cluster, task_type, task_id

    def cluster_spec(self):
        return tf.train.ClusterSpec(self._cluster)


class _FakeStrategy:
    def __init__(self, cluster, task_type, task_id):
        self.cluster_resolver = _FakeResolver(cluster, task_type, task_id)


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
])
def test_only_the_chief_writes_the_run_dir(tmp_path, cluster, task, chief):
    strategy = _FakeStrategy(cluster, *task)
    assert D.is_chief(strategy) is chief
    expected = tmp_path if chief else tmp_path / ".workers" / f"{task[0]}-{task[1]}"
    assert D.worker_dir(tmp_path, strategy) == expected


def test_mixed_precision_only_with_a_gpu_and_restored_after(monkeypatch):
    before = keras.mixed_precision.global_policy().name
    monkeypatch.setattr(D, "has_gpu", lambda: False)
    with D.precision_policy(True) as policy:
        assert policy == before
    monkeypatch.setattr(D, "has_gpu", lambda: True)
    with D.precision_policy(True) as policy:
        assert policy == "mixed_float16"
        assert keras.layers.Dense(2).dtype_policy.compute_dtype == "float16"
    assert keras.mixed_precision.global_policy().name == before


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


CLI = [sys.executable, "-c", "import sys; from singer_zoo.cli import main; sys.exit(main())"]


@pytest.mark.slow
def test_two_cpu_workers_train_one_model_together(tmp_path):
    from singer_zoo.data import Manifest, generate_corpus, read_manifest
    from singer_zoo.registry import get_config

    corpus = read_manifest(generate_corpus(tmp_path / "corpus", n_singers=3, n_songs=3,
                                           seconds=6, seed=1))
    manifest = Manifest.from_records(
        [dataclasses.replace(r, split="validation" if r.song == "song02" else "train")
         for r in corpus], tmp_path).write(tmp_path / "manifest.csv")
    cfg = get_config("t1_cnn_shallow_max").replace(
        arch={"stem_filters": 4, "stages": ((8,),), "stem_kernel": 3, "kernel": 3,
              "dense_units": 16, "dense_layers": 1},
        features={"window_frames": 64, "window_hop_frames": 32},
        train={"max_epochs": 3, "validation_every": 1, "steps_per_epoch": 3, "batch_size": 4})
    cfg.to_yaml(tmp_path / "tiny.yaml")
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    out = tmp_path / "run"
    procs = []
    for index in range(2):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                        "task": {"type": "worker", "index": index}})}
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append((subprocess.Popen(
            CLI + ["train", str(tmp_path / "tiny.yaml"), "--data", str(manifest), "--out",
                   str(out), "--strategy", "multiworker", "--verbose", "2",
                   "--cache", str(tmp_path / "cache"), "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        codes = [p.wait(timeout=300) for p, _ in procs]
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)
    # the chief (worker 0) wrote the run; worker 1 only its private resume folder
    assert (out / "best.keras").is_file() and (out / "metrics.json").is_file()
    private = out / ".workers" / "worker-1"
    assert not (private / "best.keras").exists() and not (private / "loss.png").exists()
    assert json.loads((private / "metrics.json").read_text())["finished"]
    # one model: the all-reduced losses of every epoch are the same on both workers
    chief = (out / "history.csv").read_text().splitlines()
    other = (private / "history.csv").read_text().splitlines()
    assert len(chief) == 4 and chief == other
