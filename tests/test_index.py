"""Search by voice: build an index from a manifest or a folder, query, add without
rebuilding, bad files skipped, CLI output."""
import numpy as np
import pytest

from singer_zoo import index
from singer_zoo.cli import main
from singer_zoo.errors import ConfigError, CorruptIndexError
from test_export import tiny_model_and_corpus, voice

SR = 22050


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_model_and_corpus(tmp_path_factory.mktemp("index"))


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

    faiss.write_index(other.index, str(index._index_file(tmp_path / "i")))
    with pytest.raises(CorruptIndexError, match="holds 1 vectors but items.json lists 2"):
        index.VoiceIndex.load(tmp_path / "i")


def _clustered(n, rng, centres=40):
    """n 16-d vectors around `centres` random points (as real embeddings cluster by singer)."""
    c = rng.standard_normal((centres, 16)).astype(np.float32)
    return c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, 16)).astype(np.float32)


def test_auto_kind_turns_ivf_past_flat_max_and_keeps_recall(tmp_path, monkeypatch):
    monkeypatch.setattr(index, "FLAT_FLOATS", 500 * 16)  # flat up to 500 16-d vectors
    rng = np.random.default_rng(0)
    x = _clustered(3000, rng)
    auto, flat = index.VoiceIndex("m", 16), index.VoiceIndex("m", 16, kind="flat")
    recs = [{"path": f"p{i}"} for i in range(len(x))]
    for idx in (auto, flat):
        idx.add(x[:400], recs[:400])
    assert auto.structure == flat.structure == "flat"
    for idx in (auto, flat):
        idx.add(x[400:], recs[400:])  # past flat_max: no re-embedding, ids continue
    assert auto.structure == "ivf" and flat.structure == "flat" and len(auto) == 3000
    assert faiss_nlist(auto) == index.ivf_lists(3000)
    q = _clustered(100, rng)
    recall = np.mean([len({h.id for h in auto.search(v)} & {h.id for h in flat.search(v)}) / 10
                      for v in q])
    assert recall >= 0.99
    auto.save(tmp_path / "a")
    back = index.VoiceIndex.load(tmp_path / "a")
    assert back.kind == "auto" and back.structure == "ivf" and len(back) == 3000
    assert [h.id for h in back.search(q[0])] == [h.id for h in auto.search(q[0])]


def faiss_nlist(idx):
    import faiss

    return faiss.downcast_index(idx.index).nlist


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_remove_without_rebuild_and_ids_never_reused(tmp_path, kind, capsys):
    rng = np.random.default_rng(1)
    x = _clustered(300, rng)
    idx = index.VoiceIndex("m", 16, kind=kind)
    idx.add(x, [{"path": f"p{i}"} for i in range(300)])
    assert idx.structure == kind
    assert idx.search(x[7], 1)[0].id == 7
    idx.save(tmp_path / "i")
    assert index.remove(tmp_path / "i", ["7", "p8"]) == 2
    back = index.VoiceIndex.load(tmp_path / "i")
    assert len(back) == 298 and 7 not in back.items and 8 not in back.items
    assert all(h.id not in (7, 8) for h in back.search(x[7], 20))
    assert back.add(x[:1], [{"path": "again"}]) == [300]
    with pytest.raises(ConfigError, match="not in the index: 7"):
        index.remove(tmp_path / "i", ["7"])
    assert main(["index", "remove", str(tmp_path / "i"), "9"]) == 0
    assert "removed 1 recordings" in capsys.readouterr().out
    assert len(index.VoiceIndex.load(tmp_path / "i")) == 297


def test_save_is_atomic(tmp_path, monkeypatch):
    idx = index.VoiceIndex("m", 16)
    idx.add(np.zeros((2, 16)), [{"path": "a"}, {"path": "b"}])
    idx.save(tmp_path / "i")
    idx.add(np.ones((1, 16)), [{"path": "c"}])
    real = index.os.replace

    def crash(src, dst):  # interrupted at the commit point: items.json not replaced
        if str(dst).endswith(index.ITEMS_FILE):
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(index.os, "replace", crash)
    with pytest.raises(OSError):
        idx.save(tmp_path / "i")
    monkeypatch.setattr(index.os, "replace", real)
    back = index.VoiceIndex.load(tmp_path / "i")
    assert len(back) == 2 and sorted(back.items) == [0, 1]
    idx.save(tmp_path / "i")
    assert len(index.VoiceIndex.load(tmp_path / "i")) == 3
    assert len(list((tmp_path / "i").glob("*.faiss"))) == 1  # a completed save removes the
    # files it replaced, the crashed save's too


def test_flat_bound_scales_with_width_and_ivf_stores_float16(monkeypatch):
    """Exact search costs n * dim: an auto index of 128-d embeddings turns IVF 8 times
    sooner than one of 16-d; its IVF holds float16 vectors, its distances within 1e-3."""
    import faiss

    monkeypatch.setattr(index, "FLAT_FLOATS", 500 * 16)  # 500 16-d, 62 128-d vectors
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((300, 128)).astype(np.float32)
    wide /= np.linalg.norm(wide, axis=1, keepdims=True)
    a, b = index.VoiceIndex("m", 16), index.VoiceIndex("m", 128)
    a.add(_clustered(300, rng), [{}] * 300)
    b.add(wide, [{}] * 300)
    assert index.flat_max(128) == 62 and a.structure == "flat" and b.structure == "ivf"
    assert isinstance(faiss.downcast_index(b.index), faiss.IndexIVFScalarQuantizer)
    hit = b.search(wide[7], k=1)[0]
    assert hit.id == 7 and hit.distance == pytest.approx(0, abs=1e-3)
