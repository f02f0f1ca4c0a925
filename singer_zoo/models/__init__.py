"""Keras models of the zoo: blocks and pooling -> backbone -> task heads (docs/models.md).

`DEFAULT_JIT_COMPILE` is the XLA setting the training and inference code use by default;
bench/bench_models.py measured which is faster on CPU (docs/performance.md, "Models").
"""
from singer_zoo.models.backbone import build_backbone
from singer_zoo.models.pooling import FeedForwardAttention
from singer_zoo.models.registry import build_from_config
from singer_zoo.models.tasks import (ContrastiveLoss, SiameseModel, SquaredDistance,
                                     build_classifier, build_embedder, build_siamese,
                                     contrastive_loss)

# XLA trained the paper-size rows as fast or faster on CPU in two benchmark runs (1.00x-1.67x;
# the small mobile row was faster without it); inference differences were within the noise of
# the shared 2-core machine. XLA recompiles for each new input shape.
DEFAULT_JIT_COMPILE = True

__all__ = ["DEFAULT_JIT_COMPILE", "ContrastiveLoss", "FeedForwardAttention", "SiameseModel",
           "SquaredDistance", "build_backbone", "build_classifier", "build_embedder",
           "build_from_config", "build_siamese", "contrastive_loss"]
