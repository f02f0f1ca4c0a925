"""The one place that maps front-end names (`FeatureConfig.frontend`) to layer classes."""
from __future__ import annotations

from singer_zoo.config import FeatureConfig
from singer_zoo.errors import UnknownNameError
from singer_zoo.features.cqt import CQTSpectrogram
from singer_zoo.features.db import DbFrontend
from singer_zoo.features.mel import MelSpectrogram

FRONTENDS: dict[str, type[DbFrontend]] = {"mel": MelSpectrogram, "cqt": CQTSpectrogram}


def build_frontend(cfg: FeatureConfig | None = None, **kwargs) -> DbFrontend:
    """The front-end layer `cfg.frontend` names ("mel" or "cqt", `FRONTENDS`).

    Args:
        cfg: the `FeatureConfig` (default: the paper's Mel settings).
        **kwargs: Keras layer arguments (e.g. `name`).

    Returns:
        A Keras layer, waveform (batch, samples) at `cfg.sample_rate` -> dB features
        (batch, 1 + samples // hop_length, n_bins) in [0, top_db].

    Raises:
        UnknownNameError: `cfg.frontend` is not a registered front end.

    Example:
        >>> import numpy as np
        >>> from singer_zoo.config import FeatureConfig
        >>> layer = build_frontend(FeatureConfig(frontend="cqt"))
        >>> tuple(layer(np.zeros((1, 22050), np.float32)).shape)  # 1 s
        (1, 44, 96)
    """
    cfg = cfg or FeatureConfig()
    if cfg.frontend not in FRONTENDS:
        raise UnknownNameError("front end", cfg.frontend, FRONTENDS)
    return FRONTENDS[cfg.frontend](cfg, **kwargs)
