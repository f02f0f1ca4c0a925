"""Shared fixtures: generated audio written to tmp_path (no downloaded data in tests)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf


def _tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 22050, channels: int = 1,
          amp: float = 0.5) -> np.ndarray:
    """A sine of `freq` Hz, (frames, channels) float32, channel c scaled by 1 / (c + 1)."""
    t = np.arange(round(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([x / (c + 1) for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture
def tone():
    """tone(freq=440, seconds=1, sr=22050, channels=1, amp=0.5) -> (frames, channels) float32."""
    return _tone


@pytest.fixture
def write_audio(tmp_path):
    """write_audio(name, data, sr, **soundfile_kwargs) -> path of `name` in tmp_path, written
    with `soundfile.write` (format from the extension unless `format=` is given)."""
    def write(name: str, data, sr: int, **kwargs):
        path = tmp_path / name
        sf.write(path, data, sr, **kwargs)
        return path

    return write


@pytest.fixture
def write_av(tmp_path):
    """write_av(name, data, sr, codec="aac", **av_open_kwargs) -> path of `name` in tmp_path,
    (frames, channels) float32 `data` encoded with PyAV (ffmpeg converts it to the codec's
    sample format; the container comes from the extension unless `format=` is given)."""
    def write(name: str, data: np.ndarray, sr: int, codec: str = "aac", **open_kwargs):
        path = tmp_path / name
        layout = {1: "mono", 2: "stereo", 3: "2.1"}[data.shape[1]]
        with av.open(str(path), "w", **open_kwargs) as out:
            stream = out.add_stream(codec, rate=sr, layout=layout)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T), format="fltp",
                                               layout=layout)
            frame.sample_rate = sr
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
        return path

    return write


@pytest.fixture
def tone_wav(write_audio):
    """A 3-s 440 Hz mono 16-bit wav at 22050 Hz (the model rate)."""
    return write_audio("tone.wav", _tone(seconds=3.0), 22050, subtype="PCM_16")


@pytest.fixture
def run_no_tf():
    """run_no_tf(code, timeout=600, env=None) -> stdout of `python -c code` with
    KERAS_BACKEND=jax (CPU) and TensorFlow, the audio libraries, faiss, ai-edge-litert and
    keras-tuner unimportable (tests/no_tf/sitecustomize.py: what the GPU machine lacks);
    fails the test with the child's stderr if it exits non-zero."""
    root = Path(__file__).resolve().parents[1]

    def run(code: str, timeout: int = 600, env: dict | None = None) -> str:
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
               "PYTHONPATH": os.pathsep.join([str(root / "tests" / "no_tf"), str(root)]),
               **(env or {})}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=root, check=False)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout

    return run
