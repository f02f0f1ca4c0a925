"""`MultiWorkerStrategy`: tf.distribute's multi-worker strategy, fixed for Keras 3's `fit`
(TensorFlow backend only; imported by `distribute.make_strategy("multiworker")`)."""
from __future__ import annotations

import tensorflow as tf


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
