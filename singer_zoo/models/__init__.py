"""Keras models of the zoo: blocks and pooling -> backbone -> task models (docs/models.md).

`SingerBackbone` and the task models `SingerClassifier`, `SingerEmbedder` and `SiameseModel`
are built from explicit arguments (keras-hub style), or from a zoo row with
`from_preset(name)` / a `ZooConfig` with `from_zoo_config(cfg)`; `build_from_config(cfg)`
picks the task model of `cfg.train.task`. `DEFAULT_JIT_COMPILE` is the XLA setting the
training and inference code use by default; bench/bench_models.py measured which is faster
on CPU (docs/performance.md, "Models").
"""
from singer_zoo.models.backbone import SingerBackbone, build_backbone
from singer_zoo.models.pooling import FeedForwardAttention
from singer_zoo.models.registry import build_from_config
from singer_zoo.models.tasks import (ContrastiveLoss, SiameseModel, SingerClassifier,
                                     SingerEmbedder, SquaredDistance, build_classifier,
                                     build_embedder, build_siamese, contrastive_loss,
                                     zoo_config_of)

# On an otherwise idle 2-core CPU, XLA trained all four benchmarked rows faster (1.17x-1.37x)
# and ran single-window inference faster (1.07x-1.22x); earlier runs on a loaded machine were
# mixed. XLA recompiles for each new input shape.
DEFAULT_JIT_COMPILE = True

__all__ = ["DEFAULT_JIT_COMPILE", "ContrastiveLoss", "FeedForwardAttention", "SiameseModel",
           "SingerBackbone", "SingerClassifier", "SingerEmbedder", "SquaredDistance",
           "build_backbone", "build_classifier", "build_embedder", "build_from_config",
           "build_siamese", "contrastive_loss", "zoo_config_of"]
