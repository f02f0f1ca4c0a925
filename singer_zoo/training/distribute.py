"""Distribution strategies, the chief/worker split and mixed precision for training.

- "default": TF's default strategy (one device; its scope is a no-op).
- "mirrored": `tf.distribute.MirroredStrategy`, every GPU of one host.
- "multiworker": `tf.distribute.MultiWorkerMirroredStrategy` over the hosts in the TF_CONFIG
  environment variable (validated here, since TF's own errors are obscure), with a fix for
  Keras 3's `fit` (`MultiWorkerStrategy`). Create it at program start, before other TF ops
  run (collective ops are configured once per process).

The model is built and compiled under `strategy.scope()`; datasets are batched with the
GLOBAL batch, `per-replica batch x strategy.num_replicas_in_sync`, which tf.distribute splits
among the replicas. Only the chief writes the run directory; other workers keep their
checkpoints in a private folder (see `worker_dir`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import keras
import tensorflow as tf

from singer_zoo.errors import ConfigError, UnknownNameError

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multiworker")


def parse_tf_config(raw: str | None = None) -> dict:
    """The TF_CONFIG environment variable (or `raw`), validated; ConfigError says what is wrong.

    Expected: {"cluster": {"worker": ["host:port", ...], "chief": [...]?},
               "task": {"type": "worker", "index": 0}}
    """
    raw = os.environ.get("TF_CONFIG") if raw is None else raw
    if not raw:
        raise ConfigError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                          "(cluster and task; see docs/training.md)")
    try:
        conf = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e})") from None
    if not isinstance(conf, dict):
        raise ConfigError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = conf.get("cluster"), conf.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError("TF_CONFIG: 'cluster' must map job names to lists of host:port")
    for job, hosts in cluster.items():
        if not isinstance(hosts, list) or not hosts or not all(
                isinstance(h, str) and h.rpartition(":")[2].isdigit() for h in hosts):
            raise ConfigError(f"TF_CONFIG: cluster[{job!r}] must be a non-empty list of "
                              f"'host:port' strings, got {hosts!r}")
    if "worker" not in cluster and "chief" not in cluster:
        raise ConfigError("TF_CONFIG: the cluster has neither 'worker' nor 'chief' jobs")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(f"TF_CONFIG: 'task.type' must be one of {sorted(cluster)}, "
                          f"got {task!r}")
    index = task.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or \
            not 0 <= index < len(cluster[task["type"]]):
        raise ConfigError(f"TF_CONFIG: 'task.index' must be an integer in "
                          f"[0, {len(cluster[task['type']])}), got {index!r}")
    return conf


class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` works on what Keras 3's `fit` passes it.

    Keras 3 (keras-team/keras#20585) calls `strategy.reduce` on a whole data batch (a tuple
    of per-replica values) to build the model, and on scalar logs with `axis=0`; the
    multi-worker strategy accepts neither and fit() fails before the first step. Reducing
    leaf by leaf, scalars across replicas only (`axis=None`), is what Keras means.
    """

    def reduce(self, reduce_op, value, axis):
        parent = super().reduce

        def leaf(v):
            if v is None:
                return None
            scalar = all(t.shape.rank == 0 for t in self.experimental_local_results(v))
            return parent(reduce_op, v, None if scalar else axis)

        return tf.nest.map_structure(leaf, value)


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The tf.distribute strategy called `name` (one of STRATEGIES)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        parse_tf_config()
        return MultiWorkerStrategy()
    raise UnknownNameError("strategy", name, STRATEGIES)


def task_of(strategy: tf.distribute.Strategy | None) -> tuple[str | None, int]:
    """(task type, index) of this process; (None, 0) outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """True for the process that writes the run: the 'chief' task, or worker 0 if none."""
    task_type, task_id = task_of(strategy)
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and
                                            "chief" not in strategy.cluster_resolver
                                            .cluster_spec().as_dict())


def worker_dir(out_dir, strategy: tf.distribute.Strategy | None) -> Path:
    """Where this process writes: `out_dir` for the chief, else `out_dir/.workers/<type>-<i>`.

    Non-chief workers must write their own checkpoints (every worker runs the same saving
    code, and all must restore the same epoch on resume) but not over the chief's files;
    their folder holds only the backup and the finished marker.
    """
    if is_chief(strategy):
        return Path(out_dir)
    task_type, task_id = task_of(strategy)
    return Path(out_dir) / ".workers" / f"{task_type}-{task_id}"


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy | None) -> int:
    """per-replica batch x replicas in sync (1 without a strategy)."""
    return per_replica * (strategy.num_replicas_in_sync if strategy is not None else 1)


def xla_supported(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether the zoo compiles training steps with XLA under `strategy` (default: the
    active one): only with one replica. Several replicas all-reduce their gradients, and
    TF 2.21 has no XLA collectives for CPUs (seen here: "Collectives are not yet
    implemented for CPU devices when compiling with XLA", then both workers crash); on
    several GPUs Keras + XLA + MirroredStrategy has open failures (keras-team/keras#20763,
    #18145), and no multi-GPU machine was available to check it."""
    strategy = strategy or tf.distribute.get_strategy()
    return strategy.num_replicas_in_sync <= 1


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def precision_policy(mixed: bool):
    """Use the "mixed_float16" Keras policy inside the block if `mixed` and a GPU is present.

    Models built inside compute in float16 with float32 variables; outside, the previous
    policy is back. Without a GPU the request is logged and ignored (float16 is slow on CPU).
    Yields the policy name in effect.
    """
    previous = keras.mixed_precision.global_policy()
    use = mixed and has_gpu()
    if mixed and not use:
        log.warning("--mixed-precision ignored: no GPU is visible")
    try:
        if use:
            keras.mixed_precision.set_global_policy("mixed_float16")
        yield keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy(previous)
