"""Package data and shipped embedders: the configs and shipped sources are found through the
package, `publish` -> `load(name)` rebuilds the deployable files into the cache once,
`get_file` fetches by URL with a checksum, missing data is a named error; (slow) a wheel
installed non-editable into a fresh venv has the whole zoo and embeds a file."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import singer_zoo
from singer_zoo import inference, pretrained, resources
from singer_zoo.cli import main
from singer_zoo.errors import IntegrityError, UnknownNameError
from singer_zoo.export import GRAPH_VERSION, card, export
from singer_zoo.registry import all_configs, get_config, list_models
from singer_zoo.resources import DownloadError, MissingPackageData, get_file
from test_export import make_run, voice

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("mobile_fast_attention", "mobile_fast_attention_80db",
           "mobile_fast_attention_80db_128d", "mobile_resnext_attention",
           "mobile_tdnn_statistics", "mobile_tdnn_statistics_80db",
           "mobile_tdnn_statistics_80db_128d", "t2_resnext_shallow_average", "tdnn_statistics",
           "tdnn_statistics_80db_128d")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    make_run(root / "run")
    return export(root / "run", root / "exported" / "tiny", (), name="tiny").path


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """An empty shipped folder and cache, in place of the package's and the user's."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    monkeypatch.setattr(pretrained, "shipped_dir", lambda: folder)
    monkeypatch.setenv("SINGER_ZOO_CACHE", str(tmp_path / "cache"))
    return folder


def test_package_data_is_found_through_the_package():
    root = Path(singer_zoo.__file__).parent
    assert resources.configs_dir() == root / "zoo_configs"
    assert len(list_models()) == len(list(root.joinpath("zoo_configs").glob("*.yaml")))
    assert "mobile_fast_attention" in list_models() and pretrained.available() == list(SHIPPED)
    assert inference.available() == list(SHIPPED)
    for name in SHIPPED:  # the shipped sources match their cards, and their rows exist
        keras_path, c = pretrained.source(name)
        assert keras_path == root / "shipped" / name / "embedder.keras"
        assert set(c["files"]) == {"embedder.keras"} and c["name"] in all_configs()
    assert not (REPO / "zoo_configs").exists()


def test_shipped_embedders_describe_themselves():
    """Every shipped embedder.keras is a SingerEmbedder carrying its card's row and front
    end, so export and load need nothing beside it."""
    import keras

    from singer_zoo.config import ZooConfig
    from singer_zoo.models.tasks import SingerEmbedder, zoo_config_of

    for name in SHIPPED:
        keras_path, card = pretrained.source(name)
        model = keras.saving.load_model(keras_path, safe_mode=True)
        described, carded = zoo_config_of(model), ZooConfig.from_dict(card["config"])
        assert isinstance(model, SingerEmbedder), name
        assert (described.name, described.features.to_dict(), described.arch) == \
            (carded.name, carded.features.to_dict(), carded.arch), name
        assert carded.features.to_dict() == get_config(name).features.to_dict(), name  # dft


def test_missing_package_data_names_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(MissingPackageData, match="no shipped embedders .*shipped"):
        resources.package_path("no_such_folder", what="shipped embedders (shipped/)")
    monkeypatch.setenv("SINGER_ZOO_CONFIGS", str(tmp_path))
    with pytest.raises(MissingPackageData, match=f"no zoo configs.*{tmp_path}"):
        list_models()


def test_publish_then_load_by_name_builds_once(tiny_export, shipped, tmp_path, monkeypatch,
                                              capsys):
    assert main(["pretrained", "publish", str(tiny_export),
                                "--into", str(shipped)]) == 0
    assert "published tiny" in capsys.readouterr().out
    assert sorted(p.name for p in (shipped / "tiny").iterdir()) == ["embedder.keras",
                                                                   "metadata.json"]
    published = card.read_card(shipped / "tiny")
    assert published["files"] == {"embedder.keras": card.read_card(tiny_export)["files"]
                                  ["embedder.keras"]}
    emb = singer_zoo.load("tiny")  # rebuilt into the cache, checked, verified
    assert emb.path.parent == tmp_path / "cache" / "exported"
    assert emb.card["rebuilt_from"]["sha256"] == published["files"]["embedder.keras"]
    assert emb.card["config"] == published["config"]
    y = voice(8.0, singer=2)
    np.testing.assert_allclose(emb.embed(y), singer_zoo.load(tiny_export).embed(y), atol=1e-6)

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt a valid cached export")

    with monkeypatch.context() as m:  # second load: the cache is used as it is
        m.setattr(pretrained, "export", no_rebuild)
        assert singer_zoo.load("tiny").path == emb.path
    cached = card.read_card(emb.path)  # a cache built by an older export graph is rebuilt
    cached["rebuilt_from"]["graph"] = GRAPH_VERSION - 1
    (emb.path / card.CARD).write_text(json.dumps(cached), encoding="utf-8")
    builds = []
    with monkeypatch.context() as m:
        m.setattr(pretrained, "export", lambda *a, **k: builds.append(export(*a, **k)))
        assert singer_zoo.load("tiny").card["rebuilt_from"]["graph"] == GRAPH_VERSION
    assert len(builds) == 1
    weights = emb.path / "saved_model" / "variables" / "variables.data-00000-of-00001"
    weights.write_bytes(b"tampered")  # a damaged cache is rebuilt, not loaded
    assert singer_zoo.load("tiny").embed(y) == pytest.approx(emb.embed(y), abs=1e-6)
    with pytest.raises(UnknownNameError, match="valid: tiny"):
        singer_zoo.load("no_such_model")


def test_origin_url_embedder_is_fetched_and_checked(tiny_export, shipped):
    url = (tiny_export / "embedder.keras").as_uri()
    out = pretrained.publish(tiny_export, into=shipped, origin=url)
    assert [p.name for p in out.iterdir()] == ["metadata.json"]
    assert singer_zoo.load("tiny").embed(voice(7.0)).shape == (16,)
    c = json.loads((out / "metadata.json").read_text())
    c["origin"] = "file:///no/such/embedder.keras"
    (out / "metadata.json").write_text(json.dumps(c))
    shutil.rmtree(resources.cache_dir())
    with pytest.raises(DownloadError, match="cannot fetch embedder.keras"):
        singer_zoo.load("tiny")
    del c["origin"]
    (out / "metadata.json").write_text(json.dumps(c))
    with pytest.raises(MissingPackageData, match="embedder.keras of the shipped embedder "
                                                 "'tiny'"):
        singer_zoo.load("tiny")


def test_shipped_embedder_modified_is_refused(tiny_export, shipped):
    out = pretrained.publish(tiny_export, into=shipped)
    data = bytearray((out / "embedder.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "embedder.keras").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="embedder.keras.*sha256 differs"):
        singer_zoo.load("tiny")


def test_get_file_caches_and_checks_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("SINGER_ZOO_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    digest = resources.sha256_file(src)
    path = get_file("model.bin", src.as_uri(), digest, cache_subdir="m")
    assert path == tmp_path / "cache" / "m" / "model.bin" and path.read_bytes() == src.read_bytes()
    src.unlink()  # cached and valid: not fetched again
    assert get_file("model.bin", src.as_uri(), digest, cache_subdir="m") == path
    path.write_bytes(b"changed")  # a cached file that differs is fetched again
    with pytest.raises(DownloadError, match="model.bin"):
        get_file("model.bin", src.as_uri(), digest, cache_subdir="m")
    src.write_bytes(b"other")
    with pytest.raises(IntegrityError, match="sha256 of the fetched model.bin differs"):
        get_file("model.bin", src.as_uri(), digest, cache_subdir="m")
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.bin"]  # no partial file
    assert path.read_bytes() == b"changed"


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_has_the_zoo_and_embeds(tmp_path, write_audio):
    """Build a wheel, install it (non-editable, no dependencies: they come from this venv's
    site-packages through a .pth line, which does not activate the editable install) into a
    new venv, and from outside the repository list the zoo and embed a file with a shipped
    embedder (its SavedModel rebuilt into a fresh cache)."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(REPO)], check=True)
    wheel = next((tmp_path / "dist").glob("singer_zoo-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True,
                             check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    purelib, str(wheel)], check=True)
    wav = write_audio("song.wav", voice(7.0, singer=1), 22050)
    code = ("import sys, singer_zoo, singer_zoo.inference; "
            "print(singer_zoo.__file__); print(len(singer_zoo.list_models())); "
            "print(singer_zoo.inference.available()); "
            "e = singer_zoo.load('mobile_resnext_attention').embed(sys.argv[1]); "
            "print(e.shape, bool(abs(e).sum() > 0))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SINGER_ZOO_CONFIGS")}
    env["SINGER_ZOO_CACHE"] = str(tmp_path / "cache")
    res = subprocess.run([py, "-c", code, str(wav)], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout.splitlines()
    n_rows = len(list((Path(singer_zoo.__file__).parent / "zoo_configs").glob("*.yaml")))
    assert out[0].startswith(purelib) and out[1] == str(n_rows)
    assert out[2] == str(list(SHIPPED)) and out[3] == "(16,) True"


COSINE_SOFTMAX = [n for n in SHIPPED  # unit-length rows: all trained by the cosine softmax
                  if pretrained.source(n)[1]["config"]["arch"].get("unit_embedding")]


@pytest.fixture(scope="module")
def unseen_singers(tmp_path_factory):
    """8 synthetic singers x 4 songs of a seed no training pack used."""
    from singer_zoo.data.manifest import read_manifest
    from singer_zoo.data.synthetic import generate_corpus

    root = tmp_path_factory.mktemp("unseen")
    generate_corpus(root, n_singers=8, n_songs=4, seconds=7.0, seed=4242)
    return read_manifest(root / "manifest.csv")


@pytest.mark.parametrize("name", COSINE_SOFTMAX)
def test_shipped_embedder_separates_singers_it_never_heard(name, unseen_singers):
    """Each shipped cosine-softmax embedder, in inference mode on its own front end,
    separates unseen synthetic singers far better than its untrained network (measured:
    EER 0.17-0.23 trained, 0.36-0.50 untrained; singer 1-NN 0.34-0.78, 0.22 untrained for
    the larger row, chance 0.125). The files trained with random recording channels
    (`--channel-eq`) sit at the low end of 1-NN: the generator's singers differ mostly by
    spectral tilt and a 3-kHz formant, the smooth spectral shapes that training teaches
    them to discount as the microphone's (docs/pretrained.md)."""
    from singer_zoo.evaluation import heldout as ho

    paths = [r.path for r in unseen_singers]
    singers = np.array([r.singer for r in unseen_singers])
    songs = np.array([r.song for r in unseen_singers])
    windows, scores = ho.Windows(), {}
    for label, net in (("trained", ho.keras_embedder(pretrained.source(name)[0])),
                       ("untrained", ho.untrained_embedder(name))):
        v = ho.network_vectors(lambda w: net(w, training=False), paths, windows, net.features)
        scores[label] = ho.set_metrics(v, singers, songs, sung=True)
    assert scores["trained"]["singer_1nn"] >= max(0.3, scores["untrained"]["singer_1nn"] + 0.1)
    assert scores["trained"]["eer_all"] <= min(0.30, scores["untrained"]["eer_all"] - 0.1)
