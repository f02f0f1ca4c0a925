"""The one place that maps front-end names (`FeatureConfig.frontend`) to layer classes."""
from __future__ import annotations

from singer_zoo.config import FeatureConfig
from singer_zoo.errors import UnknownNameError
from singer_zoo.features.cqt import CQTSpectrogram
from singer_zoo.features.db import DbFrontend
from singer_zoo.features.mel import MelSpectrogram

FRONTENDS: dict[str, type[DbFrontend]] = {"mel": MelSpectrogram, "cqt": CQTSpectrogram}


def build_frontend(cfg: FeatureConfig | None = None, **kwargs) -> DbFrontend:
    """The Keras layer waveform (batch, samples) -> dB features (batch, frames, n_bins)."""
    cfg = cfg or FeatureConfig()
    if cfg.frontend not in FRONTENDS:
        raise UnknownNameError("front end", cfg.frontend, FRONTENDS)
    return FRONTENDS[cfg.frontend](cfg, **kwargs)
