"""Mel front end: golden comparison with librosa, output contract, dB reference, tf.data."""
import dataclasses
import subprocess
import sys

import librosa
import numpy as np
import pytest
import tensorflow as tf

from singer_zoo.config import FeatureConfig
from singer_zoo.errors import UnknownNameError
from singer_zoo.features import (CQTSpectrogram, MelSpectrogram, build_frontend, power_to_db,
                                 power_to_db_np)
from singer_zoo.features.mel import MEL_GROUPS, filter_groups, mel_filterbank

SR = 22050


def voice_like(seconds=4.0, f0=220.0, seed=0):
    """Harmonic tone with 5.5 Hz vibrato and a little noise (a crude sung vowel)."""
    t = np.arange(int(SR * seconds)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.3
    y += 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return y.astype(np.float32)


def chirp(seconds=3.0):
    return (0.5 * librosa.chirp(fmin=80, fmax=8000, sr=SR, duration=seconds)).astype(np.float32)


def librosa_db(y):
    s = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=512, n_mels=96,
                                       htk=True, norm=None, power=2.0)
    return (librosa.power_to_db(s, ref=np.max, top_db=60) + 60).T  # (frames, 96)


@pytest.fixture(scope="module")
def mel():
    return MelSpectrogram(FeatureConfig())


@pytest.mark.parametrize("signal", [voice_like, chirp])
def test_matches_librosa_within_0_1_db(mel, signal):
    y = signal()
    ours = mel(y[None])[0].numpy()
    ref = librosa_db(y)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 0.1


def test_power_stage_matches_librosa_power(mel):
    y = voice_like(2.0)
    ours = mel.power(y[None])[0].numpy()
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=512, n_mels=96,
                                         htk=True, norm=None, power=2.0).T
    big = ref > ref.max() * 1e-6
    np.testing.assert_allclose(ours[big], ref[big], rtol=1e-3)


@pytest.mark.filterwarnings("ignore:Empty filters")  # (512, 128) has empty filters, on purpose
@pytest.mark.parametrize("n_fft, n_mels", [(2048, 96), (512, 128), (256, 7)])
def test_filter_groups_hold_every_filter_value_once(n_fft, n_mels):
    fb = mel_filterbank(SR, n_fft, n_mels)
    rebuilt = np.zeros_like(fb)
    col = 0
    for lo, hi, block in filter_groups(fb, MEL_GROUPS):
        rebuilt[lo:hi, col:col + block.shape[1]] = block
        col += block.shape[1]
    np.testing.assert_array_equal(rebuilt, fb)
    assert sum(b.size for _, _, b in filter_groups(fb, MEL_GROUPS)) < fb.size


@pytest.mark.parametrize("samples", [100, 2048, 22050, 22050 + 511, 22050 + 512])
def test_frame_count_and_range(mel, samples):
    y = np.random.default_rng(1).standard_normal((2, samples)).astype(np.float32)
    out = mel(y).numpy()
    assert out.shape == (2, 1 + samples // 512, 96)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 60.0
    np.testing.assert_allclose(out.max(axis=(1, 2)), [60.0, 60.0])
    assert mel.compute_output_shape((2, samples)) == (2, 1 + samples // 512, 96)


def test_reference_is_each_examples_own_maximum(mel):
    y = voice_like(2.0)
    out = mel(np.stack([y, 0.01 * y])).numpy()  # 40 dB quieter: same after its own max
    np.testing.assert_allclose(out[0], out[1], atol=1e-3)
    alone = mel(y[None]).numpy()[0]
    np.testing.assert_allclose(out[0], alone, atol=1e-4)


def test_power_to_db_tf_and_numpy_agree_and_clip():
    power = np.array([[1.0, 1e-3], [1e-7, 0.0]], np.float32)  # 0, -30, -70, floor dB
    expected = np.array([[60.0, 30.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(power_to_db_np(power, 60.0), expected, atol=1e-4)
    np.testing.assert_allclose(power_to_db(power[None], 60.0)[0].numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(power_to_db_np(power, 20.0), [[20, 0], [0, 0]], atol=1e-4)


def test_build_frontend_registry():
    assert isinstance(build_frontend(FeatureConfig()), MelSpectrogram)
    assert isinstance(build_frontend(FeatureConfig(frontend="cqt")), CQTSpectrogram)
    bad = FeatureConfig()
    object.__setattr__(bad, "frontend", "stft")  # bypass validation: registry must catch it
    with pytest.raises(UnknownNameError, match="'stft'.*valid: cqt, mel"):
        build_frontend(bad)


def test_non_default_config_is_honoured():
    cfg = dataclasses.replace(FeatureConfig(), n_bins=40, hop_length=256, top_db=80.0)
    y = voice_like(1.0)
    out = MelSpectrogram(cfg)(y[None])[0].numpy()
    s = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=256, n_mels=40,
                                       htk=True, norm=None, power=2.0)
    ref = (librosa.power_to_db(s, ref=np.max, top_db=80) + 80).T
    assert out.shape == ref.shape == (1 + len(y) // 256, 40)
    assert np.abs(out - ref).max() <= 0.1


def test_works_in_tf_data_map(mel):
    y = np.stack([voice_like(1.0, seed=s) for s in range(4)])
    ds = tf.data.Dataset.from_tensor_slices(y).batch(2).map(mel)
    got = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_allclose(got, mel(y).numpy(), atol=1e-4)


def test_config_round_trip(mel):
    clone = MelSpectrogram.from_config(mel.get_config())
    assert clone.features == mel.features and clone.name == "mel"


def test_power_to_db_np_in_place():
    power = np.array([[1.0, 1e-3], [1e-7, 0.0]], np.float32)
    out = power_to_db_np(power, 60.0, out=power)
    assert out is power
    np.testing.assert_allclose(power, [[60.0, 30.0], [0.0, 0.0]], atol=1e-4)


def test_package_import_leaves_handcrafted_features_lazy():
    code = ("import sys, singer_zoo.features as f; "
            "assert 'singer_zoo.features.handcrafted' not in sys.modules; "
            "assert callable(f.handcrafted_features); "
            "assert 'singer_zoo.features.handcrafted' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("n_fft, hop", [(1024, 1024), (2048, 512), (1000, 250), (97, 97)])
def test_matmul_dft_equals_the_fft(n_fft, hop):
    """`dft="matmul"` (two matrix products, the window folded in) gives the FFT's Mel power
    to float rounding, for split and prime sizes, centred and not; the end-to-end frames
    (hop == n_fft) are cut by a reshape and match the numpy path's strided frames."""
    n_mels = 8 if n_fft < 512 else 96  # no empty filter at 97 points
    base = FeatureConfig(n_fft=n_fft, hop_length=hop, n_bins=n_mels)
    rfft = MelSpectrogram(base)
    mm = MelSpectrogram(dataclasses.replace(base, dft="matmul"))
    y = np.stack([voice_like(1.3), chirp(1.3)[: int(1.3 * SR)]])
    want, got = rfft.power(y).numpy(), mm.power(y).numpy()
    assert got.shape == want.shape == (2, 1 + y.shape[1] // hop, n_mels)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * want.max())
    assert np.abs(mm(y).numpy() - rfft(y).numpy()).max() < 1e-3  # dB
    flat = mm.power(y[:1], center=False).numpy()[0]
    np.testing.assert_allclose(flat, mm.power_np(y[0]), rtol=1e-4, atol=1e-6 * flat.max())
    short = mm.power(y[:1, : n_fft - 1], center=False)  # shorter than one frame: no frames
    assert tuple(short.shape) == (1, 0, n_mels)


def test_dft_split_has_the_fewest_constants():
    from singer_zoo.features import dft

    def count(n, n1):
        n2 = n // n1
        return 2 * n * n1 + 2 * n2 * (n2 + 2)

    for n in (1024, 2048, 1000, 97):
        n1, n2 = dft.factors(n)
        assert n1 * n2 == n
        assert count(n, n1) == min(count(n, d) for d in range(1, n + 1) if n % d == 0)
        s1, s2 = dft.dft_matrices(np.hanning(n))
        assert s1.shape == (n2, n1, 2 * n1) and s2.shape == (1, 2 * n2, 2 * (n2 // 2 + 1))
    assert dft.factors(1024) == (16, 64)
