"""Search by voice: build an index from a manifest or a folder, query, add without
rebuilding, bad files skipped, CLI output."""
import numpy as np
import pytest

from singer_zoo import index
from singer_zoo.cli import main
from singer_zoo.data.synthetic import generate_corpus
from singer_zoo.errors import ConfigError, CorruptIndexError
from singer_zoo.export import export
from test_export import make_run, voice

SR = 22050


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("index")
    make_run(root / "run")
    model = export(root / "run", root / "model", ()).path
    manifest = generate_corpus(root / "corpus", n_singers=3, n_songs=2, seconds=3.0)
    return root, model, manifest


def test_build_query_and_add(setup, tmp_path, write_audio):
    root, model, manifest = setup
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage")
    idx, failed = index.build(manifest, model, tmp_path / "idx")
    assert len(idx) == 6 and not failed
    first = idx.items[0]
    hits = index.query(tmp_path / "idx", first["path"], k=3)
    assert hits[0].path == first["path"] and hits[0].distance == pytest.approx(0, abs=1e-6)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits) and len(hits) == 3
    assert hits[0].singer == "singer00" and hits[0].song == "song00"
    new = write_audio("new.wav", voice(5.0, singer=7, song=5, seed=9), SR)
    ids, failed = index.add(tmp_path / "idx", [new, bad])
    assert ids == [6] and list(failed) == [str(bad.resolve())]
    hits = index.query(tmp_path / "idx", new, k=10)
    assert hits[0].id == 6 and hits[0].path == str(new.resolve()) and len(hits) == 7


def test_folder_source_and_cli(setup, tmp_path, capsys):
    root, model, _ = setup
    audio = root / "corpus" / "audio"
    assert main(["index", "build", str(audio), "--model", str(model),
                 "--out", str(tmp_path / "i")]) == 0
    assert "indexed 6 recordings" in capsys.readouterr().out
    probe = sorted(audio.glob("*.wav"))[2]
    moved = tmp_path / "moved_model"  # --model: the export moved after the build
    model.rename(moved)
    try:
        assert main(["index", "query", str(tmp_path / "i"), str(probe), "-k", "2"]) == 2
        assert "unknown exported model" in capsys.readouterr().err
        assert main(["index", "query", str(tmp_path / "i"), str(probe), "-k", "2",
                     "--model", str(moved)]) == 0
    finally:
        moved.rename(model)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# rank") and len(lines) == 3
    assert lines[1].split("\t")[-1] == str(probe.resolve())
    assert main(["index", "query", str(tmp_path / "i"), str(tmp_path / "none.wav")]) == 2
    assert "none.wav" in capsys.readouterr().err


def test_inconsistent_or_missing_index_is_an_error(setup, tmp_path):
    _, model, manifest = setup
    with pytest.raises(CorruptIndexError, match="not a readable voice index"):
        index.VoiceIndex.load(tmp_path / "nothing")
    idx = index.VoiceIndex(str(model), 16)
    idx.add(np.zeros((2, 16)), [{"path": "a"}, {"path": "b"}])
    idx.save(tmp_path / "i")
    with pytest.raises(ConfigError, match="k must be >= 1"):
        idx.search(np.zeros(16), k=0)
    other = index.VoiceIndex(str(model), 16)
    other.add(np.zeros((1, 16)), [{"path": "c"}])
    import faiss

    faiss.write_index(other.index, str(tmp_path / "i" / index.INDEX_FILE))
    with pytest.raises(CorruptIndexError, match="holds 1 vectors but items.json lists 2"):
        index.VoiceIndex.load(tmp_path / "i")
