"""CQT front end vs librosa.cqt on pure tones: same peak bins, values within 0.5 dB in the
bins within 20 dB of each frame's peak (measured: at most 0.21 dB)."""
import librosa
import numpy as np
import pytest

from singer_zoo.config import FeatureConfig
from singer_zoo.features import CQTSpectrogram

SR = 22050
CFG = FeatureConfig(frontend="cqt")


@pytest.fixture(scope="module")
def cqt():
    return CQTSpectrogram(CFG)


def librosa_cqt_db(y):
    c = np.abs(librosa.cqt(y, sr=SR, hop_length=512, fmin=CFG.fmin, n_bins=96,
                           bins_per_octave=12)) ** 2
    return (librosa.power_to_db(c, ref=np.max, top_db=60) + 60).T  # (frames, 96)


@pytest.mark.parametrize("freq", [41.2, 110.0, 261.63, 440.0, 987.77, 3000.0, 6000.0])
def test_pure_tone_matches_librosa(cqt, freq):
    t = np.arange(int(SR * 2.5)) / SR
    y = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    ours = cqt(y[None])[0].numpy()
    ref = librosa_cqt_db(y)
    assert ours.shape == ref.shape == (1 + len(y) // 512, 96)
    inner = slice(12, -12)  # frames whose kernels lie inside the signal
    ours, ref = ours[inner], ref[inner]
    expected_bin = int(round(12 * np.log2(freq / CFG.fmin)))
    assert (ours.argmax(axis=1) == expected_bin).all()
    assert (ref.argmax(axis=1) == expected_bin).all()
    near_peak = ref > 40.0
    assert np.abs(ours - ref)[near_peak].max() <= 0.5


def test_two_tones_keep_their_level_difference(cqt):
    t = np.arange(SR * 2) / SR
    y = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1760 * t))
    out = cqt(y[None].astype(np.float32))[0].numpy()[20]
    low, high = round(12 * np.log2(220 / CFG.fmin)), round(12 * np.log2(1760 / CFG.fmin))
    assert out[low] == pytest.approx(60.0, abs=1e-3)
    # 20 dB quieter, and librosa's scale=True (x sqrt(kernel length)) puts a tone 3 octaves
    # up a further 10 log10(8) dB lower: its kernel is 8 times shorter
    assert out[high] == pytest.approx(60.0 - 20.0 - 10 * np.log10(8), abs=0.1)


def test_output_contract_and_kernel_frame(cqt):
    assert cqt.frame_length % 2 == 0
    lengths, _ = librosa.filters.wavelet_lengths(
        freqs=librosa.cqt_frequencies(n_bins=96, fmin=CFG.fmin), sr=SR)
    assert cqt.frame_length == 2 * int(np.ceil(np.ceil(lengths.max()) / 2))
    y = np.random.default_rng(0).standard_normal((3, 5000)).astype(np.float32)
    out = cqt(y).numpy()
    assert out.shape == (3, 1 + 5000 // 512, 96)
    assert out.min() >= 0 and out.max() <= 60
    np.testing.assert_allclose(out.max(axis=(1, 2)), 60.0)
    clone = CQTSpectrogram.from_config(cqt.get_config())
    assert clone.features == CFG and clone.name == "cqt"
