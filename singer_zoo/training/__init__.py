"""Fitting zoo models: `train` into a resumable run directory (docs/training.md).

- `trainer`: `train(cfg, train_data, val_data, out_dir, ...) -> TrainResult`;
- `inputs`: `load_split` (features + labels of both splits), `make_datasets`, `TrainData`;
- `callbacks`: `PaperEarlyStopping` (section 3.3), `RunBackup` (resume);
- `distribute`: `make_strategy`, chief/worker folders, mixed precision.
"""
from singer_zoo.training.callbacks import PaperEarlyStopping, RunBackup
from singer_zoo.training.distribute import STRATEGIES, make_strategy, precision_policy
from singer_zoo.training.inputs import TrainData, load_split, make_datasets
from singer_zoo.training.trainer import TrainResult, train

__all__ = ["STRATEGIES", "PaperEarlyStopping", "RunBackup", "TrainData", "TrainResult",
           "load_split", "make_datasets", "make_strategy", "precision_policy", "train"]
