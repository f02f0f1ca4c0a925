"""Distribution strategies, the chief/worker split and mixed precision for training.

- "default": one device (TF's default strategy; on JAX, no distribution).
- "data-parallel" (JAX backend): `keras.distribution.DataParallel` over every local device
  (GPUs, or the CPU's virtual devices of XLA_FLAGS=--xla_force_host_platform_device_count):
  each batch is split among the devices and the weights are replicated.
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

from singer_zoo.errors import ConfigError, UnknownNameError

log = logging.getLogger(__name__)

STRATEGIES = ("default", "data-parallel", "mirrored", "multiworker")
TF_STRATEGIES = ("mirrored", "multiworker")


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


def make_strategy(name: str = "default"):
    """The strategy called `name` (one of STRATEGIES) for the active Keras backend: a
    tf.distribute strategy on TensorFlow, a `keras.distribution.DataParallel` or None (one
    device) on JAX. Both have `.scope()`, under which the trainer builds and fits."""
    backend = keras.backend.backend()
    if name not in STRATEGIES:
        raise UnknownNameError("strategy", name, STRATEGIES)
    if name == "data-parallel":
        if backend != "jax":
            raise ConfigError(f"strategy 'data-parallel' needs KERAS_BACKEND=jax (the backend "
                              f"is {backend}); on TensorFlow use 'mirrored'")
        return keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    if backend != "tensorflow":
        if name in TF_STRATEGIES:
            raise ConfigError(f"strategy {name!r} is tf.distribute: it needs "
                              f"KERAS_BACKEND=tensorflow (the backend is {backend}); on JAX "
                              f"use 'data-parallel'")
        return None
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    parse_tf_config()
    from singer_zoo.training.multiworker import MultiWorkerStrategy

    return MultiWorkerStrategy()


def strategy_scope(strategy):
    """`strategy.scope()`, or a no-op context without a strategy."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def num_replicas(strategy) -> int:
    """Replicas a global batch is split among: tf.distribute's count, the DataParallel
    mesh's devices, or 1."""
    if strategy is None:
        return 1
    if isinstance(strategy, keras.distribution.DataParallel):
        return int(strategy.device_mesh.devices.size)
    return int(strategy.num_replicas_in_sync)


def task_of(strategy) -> tuple[str | None, int]:
    """(task type, index) of this process; (None, 0) outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy) -> bool:
    """True for the process that writes the run: the 'chief' task, or worker 0 if none."""
    task_type, task_id = task_of(strategy)
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and
                                            "chief" not in strategy.cluster_resolver
                                            .cluster_spec().as_dict())


def worker_dir(out_dir, strategy) -> Path:
    """Where this process writes: `out_dir` for the chief, else `out_dir/.workers/<type>-<i>`.

    Non-chief workers must write their own checkpoints (every worker runs the same saving
    code, and all must restore the same epoch on resume) but not over the chief's files;
    their folder holds only the backup and the finished marker.
    """
    if is_chief(strategy):
        return Path(out_dir)
    task_type, task_id = task_of(strategy)
    return Path(out_dir) / ".workers" / f"{task_type}-{task_id}"


def global_batch_size(per_replica: int, strategy) -> int:
    """per-replica batch x replicas (1 without a strategy)."""
    return per_replica * num_replicas(strategy)


def xla_supported(strategy = None) -> bool:
    """Whether the zoo compiles training steps with XLA under `strategy` (default: the
    active one): only with one replica. Several replicas all-reduce their gradients, and
    TF 2.21 has no XLA collectives for CPUs (seen here: "Collectives are not yet
    implemented for CPU devices when compiling with XLA", then both workers crash); on
    several GPUs Keras + XLA + MirroredStrategy has open failures (keras-team/keras#20763,
    #18145), and no multi-GPU machine was available to check it."""
    if keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    return strategy.num_replicas_in_sync <= 1


def has_gpu() -> bool:
    """Whether the active backend sees a GPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


@contextlib.contextmanager
def precision_policy(mixed: bool):
    """Use a mixed Keras policy inside the block if `mixed` and a GPU is present:
    "mixed_bfloat16" on JAX (no loss scaling needed; what recent GPUs run fastest),
    "mixed_float16" on TensorFlow.

    Models built inside compute in 16 bits with float32 variables; outside, the previous
    policy is back. Without a GPU the request is logged and ignored (float16 is slow on CPU).
    Yields the policy name in effect.
    """
    previous = keras.mixed_precision.global_policy()
    use = mixed and has_gpu()
    if mixed and not use:
        log.warning("--mixed-precision ignored: no GPU is visible")
    try:
        if use:
            keras.mixed_precision.set_global_policy(
                "mixed_float16" if keras.backend.backend() == "tensorflow"
                else "mixed_bfloat16")
        yield keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy(previous)
