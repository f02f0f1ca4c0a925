"""Front ends in deployable graphs: waveform -> front end -> FrameWindows saved as .keras,
exported as a SavedModel, converted to TFLite with builtin ops only and run with
ai_edge_litert at two input lengths (dynamic length works). Tolerance vs the Keras layer:
1e-3 dB for Mel (measured 8e-6), 5e-3 dB for CQT (measured 6e-4)."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from singer_zoo.config import FeatureConfig
from singer_zoo.features import FrameWindows, build_frontend

LENGTHS = (132300, 50000)  # 6 s (259 frames, 1 window) and 2.3 s (padded to one window)
TOL = {"mel": 1e-3, "cqt": 5e-3}


def waveforms():
    rng = np.random.default_rng(0)
    t = np.arange(max(LENGTHS)) / 22050
    y = 0.4 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))
    return {n: y[None, :n].astype(np.float32) for n in LENGTHS}


@pytest.fixture(scope="module", params=["mel", "cqt"])
def exported(request, tmp_path_factory):
    """(frontend name, Keras model, SavedModel dir, TFLite bytes) for one front end."""
    cfg = FeatureConfig(frontend=request.param)
    wave = keras.Input(shape=(None,), name="waveform")
    feats = build_frontend(cfg)(wave)
    model = keras.Model(wave, FrameWindows.from_features(cfg)(feats), name="frontend")
    folder = tmp_path_factory.mktemp(request.param)
    model.export(str(folder / "saved"), verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved"))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return request.param, model, folder, conv.convert()


def test_keras_file_round_trip(exported):
    name, model, folder, _ = exported
    model.save(folder / "m.keras")
    loaded = keras.saving.load_model(folder / "m.keras")
    assert loaded.get_layer(name).__class__ is model.get_layer(name).__class__
    for y in waveforms().values():
        np.testing.assert_allclose(loaded(y).numpy(), model(y).numpy(), atol=1e-5)


def test_saved_model_round_trip(exported):
    _, model, folder, _ = exported
    served = tf.saved_model.load(str(folder / "saved"))
    for y in waveforms().values():
        np.testing.assert_allclose(served.serve(y).numpy(), model(y).numpy(), atol=1e-5)


def test_tflite_builtins_any_length(exported):
    name, model, _, flat = exported
    interp = Interpreter(model_content=flat)
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert "BATCH_MATMUL" in ops and "FULLY_CONNECTED" not in ops
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    for n, y in waveforms().items():
        interp.resize_tensor_input(inp["index"], [1, n])
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], y)
        interp.invoke()
        got, want = interp.get_tensor(out["index"]), model(y).numpy()
        assert got.shape == want.shape == (1, 1, 256, 96)
        assert np.abs(got - want).max() <= TOL[name]
