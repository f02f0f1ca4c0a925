"""The fast mobile row `mobile_fast_attention` (issue 18): strided stem, depthwise-separable
blocks, cheaper front end; it builds, trains, exports to TFLite, and leaves the paper's
stem untouched."""
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from singer_zoo import get_config
from singer_zoo.data.synthetic import render, singer_params, song_params
from singer_zoo.export import export, tflite
from singer_zoo.features import extract_windows
from singer_zoo.models import ContrastiveLoss, build_from_config
from singer_zoo.models.table import count_params

CFG = get_config("mobile_fast_attention")
SR = 22050


@pytest.fixture(autouse=True)
def _clear():
    yield
    keras.backend.clear_session()


def voice(seconds, singer, song, seed):
    return render(singer_params(0, singer), song_params(0, song), seconds, SR,
                  np.random.default_rng(seed))


def test_strided_stem_replaces_pooling_and_blocks_are_separable():
    emb = build_from_config(CFG, n_frames=CFG.features.window_frames).embedder
    names = {layer.name: layer for layer in emb.get_layer("backbone").layers}
    assert "stem_pool" not in names and names["stem_conv"].strides == (4, 4)
    assert isinstance(names["stage1_block1_conv1_conv"], keras.layers.SeparableConv2D)
    assert CFG.arch.pooling_factor == 16
    # (1, 128, 96) -> stem (32, 24) -> stage pools (8, 6) x 64 channels -> D = 384
    assert tuple(names["aggregation_attention"].input.shape[1:]) == (8, 384)
    assert emb.count_params() == count_params(CFG).model
    paper = get_config("mobile_resnext_attention").arch
    assert paper.stem_stride == 1 and "stem_stride" not in paper.to_dict()
    assert paper.pooling_factor == 8


def test_trains_a_step_and_exports_to_tflite(tmp_path, write_audio):
    f = CFG.features
    x = [extract_windows(voice(8.0, s, 0, s), f) for s in range(4)]  # 4 x (2, 128, 96)
    assert x[0].shape[1:] == (f.window_frames, f.n_bins)
    a = np.concatenate([x[0], x[1], x[2], x[0]])
    b = np.concatenate([x[0][::-1], x[2], x[3], x[1]])
    y = np.array([1] * 2 + [0] * 6, "float32")
    keras.utils.set_random_seed(0)
    model = build_from_config(CFG)
    model.compile(keras.optimizers.Adam(1e-3), ContrastiveLoss(CFG.train.margin))
    before = [w.copy() for w in model.embedder.get_weights()]
    losses = [float(model.train_on_batch([a, b], y)) for _ in range(3)]
    assert all(np.isfinite(losses))
    assert any(not np.allclose(u, v) for u, v in zip(before, model.embedder.get_weights()))
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "best.keras")
    CFG.to_yaml(run / "config.yaml")
    out = export(run, tmp_path / "out", ("float32", "int8"), check_audio=voice(8.0, 1, 1, 9))
    assert out.card["checks"]["tflite_int8"]["min_cosine_vs_float32"] >= 0.99
    clip = voice(6.0, 2, 1, 3)
    ref = model.embedder.predict(extract_windows(clip, f), verbose=0)  # (1, 16)
    got = tflite.run(out.path / "model_float32.tflite", clip)
    assert got["window_embeddings"].shape == (1, 16)
    np.testing.assert_allclose(got["embedding"], ref[0], atol=1e-3)
    int8 = out.path / "model_int8.tflite"
    assert int8.stat().st_size <= 500_000
    # the row's DFT is matrix products (FeatureConfig.dft): no RFFT2D in its files
    for name in ("model_float32.tflite", "model_int8.tflite"):
        ops = {op["op_name"] for op in Interpreter(
            model_path=str(out.path / name))._get_ops_details()}
        assert "BATCH_MATMUL" in ops and "RFFT2D" not in ops, (name, ops)
    # the example app runs the new file unchanged (same contract: 132300 samples in)
    wav = write_audio("app.wav", clip, SR, subtype="FLOAT")
    script = Path(__file__).resolve().parent.parent / "examples" / "run_tflite.py"
    lines = subprocess.run([sys.executable, str(script), str(int8), str(wav)],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    values = np.array(lines[0].split("[", 1)[1].rstrip("]").split(), float)
    np.testing.assert_allclose(values, tflite.run(int8, clip)["embedding"], atol=1e-3)
