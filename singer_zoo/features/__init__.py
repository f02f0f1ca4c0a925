"""Audio front ends (paper section 3.2) as TF ops and registered Keras layers.

- `MelSpectrogram`, `CQTSpectrogram`: waveform (batch, samples) -> dB (batch, frames, bins)
  in [0, top_db]; `build_frontend(FeatureConfig)` picks one by name.
- `chop` / `FrameWindows`: features -> overlapping 256-frame windows.
- `extract_features` / `extract_windows`: one recording, streamed block by block.
- `handcrafted_features`: the librosa baseline features (imported on first use only, so
  that importing the front ends does not pull in the baseline code).

See docs/features.md.
"""
from singer_zoo.features.cqt import CQTSpectrogram
from singer_zoo.features.db import power_to_db, power_to_db_np
from singer_zoo.features.extract import extract_features, extract_windows
from singer_zoo.features.mel import MelSpectrogram
from singer_zoo.features.registry import FRONTENDS, build_frontend
from singer_zoo.features.windows import FrameWindows, chop, gather_windows, n_windows


def __getattr__(name):
    if name == "handcrafted_features":
        from singer_zoo.features.handcrafted import handcrafted_features

        return handcrafted_features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CQTSpectrogram", "FRONTENDS", "FrameWindows", "MelSpectrogram", "build_frontend",
           "chop", "extract_features", "extract_windows", "gather_windows", "handcrafted_features",
           "n_windows", "power_to_db", "power_to_db_np"]
