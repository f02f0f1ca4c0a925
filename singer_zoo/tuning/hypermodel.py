"""The zoo as a keras-tuner `HyperModel` (paper section 3.3: hyperparameters by Bayesian
optimisation).

`SingerHyperModel.build(hp)` maps the trial's hyperparameters onto the space's base
`ZooConfig` and compiles the zoo's own model of it (`training.trainer.compile_model`, i.e.
`models.build_from_config` with the training optimizer and loss), so there is no second
model definition. `fit` trains it exactly as `singer-zoo train` does: the training module's
datasets (`make_datasets`: windows and labels for the classifier, 1:1 same/different pairs
for the siamese embedder with its contrastive loss) and the paper's early stopping
(`PaperEarlyStopping`: validation every N epochs, patience in epochs, relative
improvement). A trial's result is the validation metrics of the epoch that early stopping
kept, so the objective is the best validation loss by the paper's rule.
"""
from __future__ import annotations

import keras
import keras_tuner

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError
from singer_zoo.tuning.space import SearchSpace


class SingerHyperModel(keras_tuner.HyperModel):
    """Hyperparameters of `space` -> the zoo model of either task (`space.base.train.task`).

    `num_classes` is the classifier's output size (ignored by the siamese task). `fits`
    counts the trials this process has trained (a distributed worker reports it).
    """

    def __init__(self, space: SearchSpace, num_classes: int = 2):
        super().__init__(name=space.name, tunable=True)
        self.space = space
        self.num_classes = int(num_classes)
        self.fits = 0

    def declare_hyperparameters(self, hp) -> None:
        self.space.declare(hp)

    def trial_config(self, hp) -> ZooConfig:
        """The config a trial trains: base + hyperparameters + the trial budget."""
        return self.space.config(self.space.declare(hp), trial=True)

    def build(self, hp) -> keras.Model:
        from singer_zoo.training.trainer import compile_model

        try:
            cfg = self.trial_config(hp)
        except ConfigError as e:  # an impossible combination: skip the trial, not the search
            raise keras_tuner.errors.FailedTrialError(str(e)) from None
        keras.utils.set_random_seed(cfg.train.seed)
        model = compile_model(cfg, self.num_classes)
        # Built optimizer variables are saved with the trial checkpoint and restored when
        # Hyperband trains a trial on (else Adam's moments would restart from zero).
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, train_data, val_data, *, epochs=None, initial_epoch=0,
            callbacks=(), verbose=0) -> dict:
        """Train `model` on `train_data` (a `training.TrainData`), early-stopping on
        `val_data`; return {val_metric: value} of the kept epoch. `epochs` and
        `initial_epoch` are set by Hyperband, else the trial budget's max_epochs is used.
        """
        from singer_zoo.training.callbacks import PaperEarlyStopping
        from singer_zoo.training.inputs import make_datasets
        from singer_zoo.training.trainer import fit

        cfg = self.trial_config(hp)
        t = cfg.train
        epochs = int(epochs or t.max_epochs)
        es = PaperEarlyStopping(t.patience, t.validation_every, t.min_improvement,
                                verbose=int(verbose > 0))
        history = fit(model, cfg, make_datasets(cfg, train_data, val_data, t.batch_size),
                      epochs=epochs, initial_epoch=int(initial_epoch),
                      callbacks=[es, *(callbacks or ())], verbose=verbose)
        self.fits += 1
        return kept_epoch_metrics(history.history, es.best)


def kept_epoch_metrics(history: dict, best_val_loss) -> dict:
    """The `val_*` metrics of the validation epoch whose val_loss early stopping kept.

    `history` holds one value per validation epoch for the `val_*` keys (Keras logs them
    only when validation runs). A trial without a finite validation loss fails.
    """
    val_losses = history.get("val_loss", [])
    if best_val_loss is None or not val_losses:
        raise keras_tuner.errors.FailedTrialError("the trial logged no validation loss")
    i = min(range(len(val_losses)), key=lambda j: abs(val_losses[j] - best_val_loss))
    return {k: float(v[i]) for k, v in history.items()
            if k.startswith("val_") and len(v) == len(val_losses)}
