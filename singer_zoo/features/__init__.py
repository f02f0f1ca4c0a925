"""Audio front ends (paper section 3.2) as TF ops and registered Keras layers.

- `MelSpectrogram`, `CQTSpectrogram`: waveform (batch, samples) -> dB (batch, frames, bins)
  in [0, top_db]; `build_frontend(FeatureConfig)` picks one by name.
- `chop` / `FrameWindows`: features -> overlapping 256-frame windows.
- `extract_features` / `extract_windows`: one recording, streamed block by block.
- `handcrafted_features`: the librosa baseline features.

Every name is imported on first use, so `chop` / `n_windows` need neither TF nor librosa.

See docs/features.md.
"""
import importlib

# Imported on first use (PEP 562), so that reading a features cache or counting windows
# imports neither TensorFlow nor librosa (the front-end layers need both).
_WHERE = {"CQTSpectrogram": "cqt", "power_to_db": "db", "power_to_db_np": "db",
          "extract_features": "extract", "extract_windows": "extract",
          "MelSpectrogram": "mel", "FRONTENDS": "registry", "build_frontend": "registry",
          "FrameWindows": "windows", "chop": "windows", "fill_window": "windows",
          "gather_windows": "windows",
          "n_windows": "windows", "handcrafted_features": "handcrafted"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"singer_zoo.features.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CQTSpectrogram", "FRONTENDS", "FrameWindows", "MelSpectrogram", "build_frontend",
           "chop", "extract_features", "extract_windows", "fill_window", "gather_windows",
           "handcrafted_features", "n_windows", "power_to_db", "power_to_db_np"]
