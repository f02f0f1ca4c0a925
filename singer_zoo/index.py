"""Search by voice: a faiss index of performance embeddings (docs/export.md, "Search by
voice"; speed and recall: docs/performance.md, "Search index").

An index is a folder holding
- `index-<generation>.faiss`: the vectors, searched by squared Euclidean distance (the
  distance the siamese models are trained on; faiss's L2 distances are squared), in one of
  two structures (`KINDS`):
  - "flat": `IndexIDMap2(IndexFlatL2(dim))`, exact;
  - "ivf": `IndexIVFScalarQuantizer` with `ivf_lists(n)` lists, vectors stored as float16
    (half the memory and half the scan time of float32 at 128-d, for distances within
    1e-3), `NPROBE` lists probed per query, ids in a hash-table direct map (so vectors can
    be removed and read back);
  `kind="auto"` (the default) is flat up to `flat_max(dim)` vectors and IVF beyond, where
  exact search stops answering within a few milliseconds;
- `items.json`: the exported model used (its folder), the kind, the faiss file's name,
  `next_id`, `count`, and for every id the recording's path, singer and song.

Recordings are added (`add`) and removed (`remove`) without re-embedding the collection;
ids are never reused. The structure follows the collection: an "auto" index turns IVF when
it outgrows `flat_max(dim)`, and an IVF index is re-clustered from its own vectors when it has
grown to twice the lists its size calls for. Saving is atomic: the faiss file goes under a
new generation's name, then items.json, which names it, replaces the old one in a single
rename (the commit point), then the old faiss file is removed; an interrupted save leaves
the previous index readable. `count` in items.json must match the faiss file on load.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from singer_zoo.data.manifest import audio_path, read_manifest
from singer_zoo.errors import ConfigError, CorruptIndexError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac",
                    ".mp4", ".webm", ".aif", ".aiff", ".wma"}
INDEX_FILE, ITEMS_FILE = "index.faiss", "items.json"  # INDEX_FILE: indexes saved before kinds
KINDS = ("auto", "flat", "ivf")
# "auto": exact search while n * dim <= FLAT_FLOATS: 200,000 16-d or 25,000 128-d vectors
# (0.7 and 0.8 ms a query on one thread; 100,000 128-d took 3.5 ms, 200,000 15 ms)
FLAT_FLOATS = 3_200_000
NPROBE = 256  # IVF lists probed per query (bench/bench_index.py: recall@10 vs time)


def flat_max(dim: int) -> int:
    """The most vectors of `dim` dimensions an "auto" index searches exactly."""
    return FLAT_FLOATS // dim


def ivf_lists(n: int) -> int:
    """IVF lists for n vectors: 2 sqrt(n) (2,000 at 1M), at least 1."""
    return max(1, round(2 * float(np.sqrt(n))))


@dataclass(frozen=True)
class Hit:
    """One search result: the recording's id in the index, its squared Euclidean distance
    to the query embedding, and its path, singer and song ("" when unknown)."""

    id: int
    distance: float  # squared Euclidean
    path: str
    singer: str
    song: str


def check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be >= 1 (an integer), got {k!r}")


def collect(dir_or_manifest) -> list[dict]:
    """The recordings `build` would index.

    Args:
        dir_or_manifest: a manifest CSV, or a folder searched recursively for audio files
            by extension (`AUDIO_EXTENSIONS`).

    Returns:
        [{"path", "singer", "song"}]; singer and song are "" for a folder's files.

    Raises:
        ConfigError: no such folder or file, or a folder without audio files.
    """
    src = Path(dir_or_manifest)
    if not src.exists():
        raise ConfigError(f"{src}: no such folder or manifest file")
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise ConfigError(f"{src}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})")
        return [{"path": audio_path(src, p.relative_to(src)), "singer": "", "song": ""}
                for p in files]
    m = read_manifest(src, check_files=False, splits=None)
    return [{"path": r.path, "singer": r.singer, "song": r.song} for r in m]


class VoiceIndex:
    """Embeddings with ids and their recordings' metadata, in memory (module doc).

    The command line and `build` / `add` / `query` / `remove` below work on saved index
    folders; use this class directly for embeddings computed elsewhere.

    Args:
        model: the exported model's folder the embeddings come from (kept in items.json;
            `query` and `add` embed with it).
        dim: embedding size (16 for the zoo's embedders).
        index: a faiss index to wrap (default: an empty exact one).
        items: {id: {"path", "singer", "song"}} of the vectors in `index`.
        next_id: the next id to give (ids are never reused).
        kind: "auto", "flat" or "ivf" (`KINDS`).
        generation: the save generation `index` was loaded from.

    Example:
        >>> import numpy as np
        >>> idx = VoiceIndex("exported/my_model", 16)
        >>> idx.add(np.eye(16)[:3], [{"path": "a.wav", "singer": "ann"}, {"path": "b.wav"},
        ...                          {"path": "c.wav"}])
        [0, 1, 2]
        >>> [(hit.id, hit.singer) for hit in idx.search(np.eye(16)[0], k=2)]
        [(0, 'ann'), (1, '')]
        >>> idx.save("my_index")
        >>> len(VoiceIndex.load("my_index")), VoiceIndex.load("my_index").structure
        (3, 'flat')
    """

    def __init__(self, model: str, dim: int, index=None, items=None, next_id: int = 0,
                 kind: str = "auto", generation: int = 0):
        if kind not in KINDS:
            raise ConfigError(f"unknown index kind {kind!r}; valid: {', '.join(KINDS)}")
        self.model, self.dim, self.kind = model, int(dim), kind
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
        self.items: dict[int, dict] = dict(items or {})
        self.next_id, self.generation = int(next_id), int(generation)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def structure(self) -> str:
        """"flat" or "ivf": what the faiss index is now."""
        return "ivf" if isinstance(faiss.downcast_index(self.index), faiss.IndexIVF) else "flat"

    def add(self, embeddings: np.ndarray, records: list[dict]) -> list[int]:
        """Add embeddings with their recordings' metadata (in memory; `save` writes).

        Args:
            embeddings: (n, dim) float embeddings.
            records: n dicts with "path" and, when known, "singer" and "song".

        Returns:
            The n new ids. The index turns IVF, or is re-clustered, when its size calls
            for it (module doc).
        """
        x = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1, self.dim)
        ids = np.arange(self.next_id, self.next_id + len(x), dtype=np.int64)
        if len(x):
            self.index.add_with_ids(x, ids)
        for i, rec in zip(ids, records):
            self.items[int(i)] = {k: rec.get(k, "") for k in ("path", "singer", "song")}
        self.next_id += len(x)
        self._restructure()
        return [int(i) for i in ids]

    def remove(self, ids) -> int:
        """Remove the recordings with these ids (unknown ids are ignored); return how many
        were removed."""
        ids = np.asarray([i for i in ids if int(i) in self.items], dtype=np.int64)
        removed = int(self.index.remove_ids(ids)) if len(ids) else 0
        for i in ids:
            self.items.pop(int(i))
        return removed

    def _restructure(self) -> None:
        """Turn IVF, or re-cluster an IVF index, when the size calls for it (module doc)."""
        n = len(self)
        if not n or self.kind == "flat" or (self.kind == "auto" and n <= flat_max(self.dim)):
            return
        index = faiss.downcast_index(self.index)
        if isinstance(index, faiss.IndexIVF) and ivf_lists(n) < 2 * index.nlist:
            return
        ids = np.fromiter(sorted(self.items), np.int64, len(self.items))
        x = self.index.reconstruct_batch(ids)  # (n, dim)
        nlist = ivf_lists(n)
        quantizer = faiss.IndexFlatL2(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist,
                                            faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_L2)
        quantizer.this.disown()  # the IVF index owns (and frees) its coarse quantizer
        ivf.own_fields = True
        rng = np.random.default_rng(0)
        ivf.train(x[rng.choice(n, min(n, 40 * nlist), replace=False)])
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.nprobe = NPROBE
        ivf.add_with_ids(x, ids)
        self.index = ivf

    def search(self, embedding, k: int = 10) -> list[Hit]:
        """The k nearest recordings to one embedding.

        Args:
            embedding: (dim,) query embedding.
            k: how many hits (at most the index's size), an integer >= 1.

        Returns:
            [Hit], nearest first (IVF search is approximate: docs/performance.md).

        Raises:
            ConfigError: `k` is not an integer >= 1.
        """
        check_k(k)
        q = np.ascontiguousarray(embedding, dtype=np.float32).reshape(1, self.dim)
        dist, ids = self.index.search(q, min(k, len(self)))
        return [Hit(int(i), float(d), **self.items[int(i)])
                for d, i in zip(dist[0], ids[0]) if i >= 0]

    def save(self, folder) -> None:
        """Write the index to `folder` (created if needed), atomically (module doc)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        old = _index_file(folder)  # also removes a pre-generation index.faiss
        self.generation += 1
        name = f"index-{self.generation:06d}.faiss"
        meta = {"model": self.model, "dim": self.dim, "kind": self.kind, "index_file": name,
                "next_id": self.next_id, "count": len(self),
                "items": {str(i): v for i, v in self.items.items()}}
        faiss.write_index(self.index, str(folder / f"{name}.tmp"))
        os.replace(folder / f"{name}.tmp", folder / name)
        (folder / f"{ITEMS_FILE}.tmp").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(folder / f"{ITEMS_FILE}.tmp", folder / ITEMS_FILE)  # the commit point
        for stale in [old, *folder.glob("index-*.faiss")]:  # incl. an interrupted save's
            if stale is not None and stale.name != name:
                stale.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder) -> VoiceIndex:
        """The index saved in `folder`.

        Raises:
            CorruptIndexError: an unreadable items.json or faiss file, or a faiss file
                whose vector count differs from items.json's `count`.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / ITEMS_FILE).read_text(encoding="utf-8"))
            name = meta.get("index_file", INDEX_FILE)
            index = faiss.read_index(str(folder / name))
            if isinstance(faiss.downcast_index(index), faiss.IndexIVF):
                faiss.downcast_index(index).nprobe = NPROBE
            items = {int(i): v for i, v in meta["items"].items()}
            loaded = cls(meta["model"], meta["dim"], index, items, meta["next_id"],
                         meta.get("kind", "flat"), _generation(name))
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as e:
            raise CorruptIndexError(folder, f"not a readable voice index ({e!r})") from None
        if index.ntotal != meta.get("count"):
            raise CorruptIndexError(folder, f"{name} holds {index.ntotal} vectors but "
                                            f"items.json lists {meta.get('count')}")
        return loaded


def _index_file(folder: Path) -> Path | None:
    """The faiss file the folder's items.json names (None without a readable one)."""
    try:
        meta = json.loads((folder / ITEMS_FILE).read_text(encoding="utf-8"))
        return folder / meta.get("index_file", INDEX_FILE)
    except (OSError, ValueError, AttributeError):
        return None


def _generation(name: str) -> int:
    stem = Path(name).stem
    return int(stem.split("-")[1]) if stem.startswith("index-") else 0


def _embed(embedder, records: list[dict], progress) -> tuple[np.ndarray, list[dict], dict]:
    ok, failed = embedder.embed_many([r["path"] for r in records], progress=progress)
    kept = [r for r in records if r["path"] in ok]
    x = np.stack([ok[r["path"]] for r in kept]) if kept else np.zeros((0, embedder.dim))
    return x, kept, failed


def build(source, model, out, progress=None, kind: str = "auto", overwrite: bool = False
          ) -> tuple[VoiceIndex, dict]:
    """Embed every recording of a folder or manifest and save them as a new index.

    Args:
        source: a manifest CSV (singer and song are kept) or a folder (`collect`).
        model: the exported model: a shipped embedder's name or an export folder
            (`singer_zoo.load`).
        out: the index folder to write.
        progress: show a progress bar (default: from 20 files on).
        kind: "auto" (exact up to `flat_max(dim)` recordings, IVF beyond), "flat" or "ivf".
        overwrite: replace an existing index or file at `out`.

    Returns:
        (the `VoiceIndex`, {path: error message} of the files that were skipped).

    Raises:
        ConfigError: `out` exists without `overwrite`, a bad source or kind.

    Example:
        >>> idx, skipped = build("recordings/", "mobile_resnext_attention", "my_index")
        >>> print(len(idx), "indexed,", len(skipped), "skipped")
    """
    from singer_zoo.inference import load

    out = Path(out)
    if out.exists() and not overwrite:
        what = "an index" if (out / ITEMS_FILE).exists() else "a file or folder"
        raise ConfigError(f"{out}: {what} already exists there; use `index add` to extend "
                          f"an index, or overwrite (--overwrite) to replace it")
    records = collect(source)
    embedder = load(model)
    x, kept, failed = _embed(embedder, records, progress)
    idx = VoiceIndex(str(embedder.path), embedder.dim, kind=kind)
    idx.add(x, kept)
    idx.save(out)
    return idx, failed


def add(index_folder, files, model=None, progress=None) -> tuple[list[int], dict]:
    """Embed more recordings and add them to a saved index (nothing is re-embedded).

    Args:
        index_folder: the index folder (`build`).
        files: audio file paths (or one path).
        model: the exported model to embed with (default: the index's own, e.g. pass the
            new folder after moving the export).
        progress: show a progress bar (default: from 20 files on).

    Returns:
        (the new ids, {path: error message} of the files that were skipped). A file
        already in the index, or listed twice, is skipped with a message: it would be a
        duplicate hit.

    Example:
        >>> ids, skipped = add("my_index", ["new/song1.wav", "new/song2.m4a"])
    """
    from singer_zoo.inference import load

    idx = VoiceIndex.load(index_folder)
    if isinstance(files, (str, bytes, os.PathLike)):
        files = [files]
    indexed = {item["path"]: i for i, item in idx.items.items()}
    records, failed = [], {}
    for f in files:
        path = audio_path(os.getcwd(), f)
        if path in indexed:
            failed[path] = f"{path}: already in the index (id {indexed[path]}); not added again"
        else:
            indexed[path] = "this batch"
            records.append({"path": path, "singer": "", "song": ""})
    embedder = load(model or idx.model)
    x, kept, bad = _embed(embedder, records, progress)
    failed.update(bad)
    ids = idx.add(x, kept)
    idx.save(index_folder)
    return ids, failed


def query(index_folder, audio, k: int = 10, model=None) -> list[Hit]:
    """The recordings of a saved index nearest to a recording.

    Args:
        index_folder: the index folder (`build`).
        audio: the query recording: an audio file or a 22050 Hz mono float waveform.
        k: how many hits, an integer >= 1 (checked before the model loads).
        model: the exported model to embed with (default: the index's own).

    Returns:
        [Hit(id, distance, path, singer, song)], nearest first; the distance is the
        squared Euclidean distance between embeddings.

    Example:
        >>> for hit in query("my_index", "query.wav", k=5):
        ...     print(f"{hit.distance:.3f} {hit.singer} {hit.path}")
    """
    from singer_zoo.inference import load

    check_k(k)  # before the model loads (seconds)
    idx = VoiceIndex.load(index_folder)
    return idx.search(load(model or idx.model).embed(audio), k)


def remove(index_folder, ids_or_paths) -> int:
    """Remove recordings from a saved index (no re-embedding) and save it.

    Args:
        index_folder: the index folder (`build`).
        ids_or_paths: ids (ints or digit strings) or the paths the recordings were
            indexed under.

    Returns:
        How many were removed.

    Raises:
        ConfigError: an id or path is not in the index (it names them; nothing is
            removed).

    Example:
        >>> remove("my_index", [3, "old/song.wav"])
        2
    """
    idx = VoiceIndex.load(index_folder)
    by_path = {v["path"]: i for i, v in idx.items.items()}
    ids, unknown = [], []
    for x in ids_or_paths:
        s = str(x)
        if s.isdigit() and int(s) in idx.items:
            ids.append(int(s))
        elif s in by_path or audio_path(os.getcwd(), s) in by_path:
            ids.append(by_path.get(s, by_path.get(audio_path(os.getcwd(), s))))
        else:
            unknown.append(s)
    if unknown:
        raise ConfigError(f"{index_folder}: not in the index: {', '.join(unknown)}")
    removed = idx.remove(ids)
    idx.save(index_folder)
    return removed
