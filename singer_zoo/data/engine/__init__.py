"""The training-data engine (issue 17): many voices singing many songs, augmented, streamed.

- `melody`: songs as pitch tracks with vibrato and note durations.
- `singing`: speech -> singing with the WORLD vocoder (pyworld); vocal-tract-length shifts.
- `augment`: simulated room reverberation (pyroomacoustics) and coloured noise.
- `stream`: voices, (pseudo-)singer identities, the `Plan` of who sings what, and the
  `performances` generator.
- `pack_stream`: the stream's features into a training pack (`singer_zoo.data.pack`).

See docs/training_data.md.
"""
from __future__ import annotations

from singer_zoo.config import FeatureConfig
from singer_zoo.data.engine.augment import AugmentConfig, Augmenter
from singer_zoo.data.engine.stream import (
    FileVoice,
    Identity,
    Performance,
    Plan,
    SyntheticVoice,
    TextVoice,
    lyrics,
    performances,
    pseudo_singers,
)
from singer_zoo.data.pack import PackWriter


def pack_stream(stream, path, cfg: FeatureConfig | None = None, extra: dict | None = None,
                progress=None):
    """Extract the features of every `Performance` of `stream` and write them as a pack;
    `progress(i, performance)` is called after each. Returns the pack's path."""
    from singer_zoo.features import extract_features

    writer = PackWriter(cfg)
    for i, perf in enumerate(stream):
        writer.add(extract_features(perf.audio, writer.cfg), perf.singer, perf.song,
                   perf.source, perf.recording)
        if progress is not None:
            progress(i, perf)
    return writer.write(path, extra)


__all__ = ["AugmentConfig", "Augmenter", "FileVoice", "Identity", "Performance", "Plan",
           "SyntheticVoice", "TextVoice", "lyrics", "pack_stream", "performances",
           "pseudo_singers"]
