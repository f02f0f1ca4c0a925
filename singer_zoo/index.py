"""Search by voice: a faiss index of performance embeddings (docs/export.md, "Search").

An index is a folder holding
- `index.faiss`: `IndexIDMap2(IndexFlatL2(dim))`, exact search on the squared Euclidean
  distance the siamese models are trained on (faiss's L2 distances are squared);
- `items.json`: the exported model used (its folder), `next_id`, and for every id the
  recording's path, singer and song (empty when unknown, e.g. for a plain folder).

Recordings can be added later without rebuilding (`add`); ids are never reused. Both files
are written to temporary names and renamed into place; `count` in items.json must match
the faiss index on load, so a half-written pair is detected.
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
INDEX_FILE, ITEMS_FILE = "index.faiss", "items.json"


@dataclass(frozen=True)
class Hit:
    id: int
    distance: float  # squared Euclidean
    path: str
    singer: str
    song: str


def check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be >= 1 (an integer), got {k!r}")


def collect(dir_or_manifest) -> list[dict]:
    """[{"path", "singer", "song"}] of a manifest CSV or of the audio files in a folder
    (recursively, by extension; singer and song unknown)."""
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
    """Embeddings with ids and their recordings' metadata; see the module doc."""

    def __init__(self, model: str, dim: int, index=None, items=None, next_id: int = 0):
        self.model, self.dim = model, int(dim)
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
        self.items: dict[int, dict] = dict(items or {})
        self.next_id = int(next_id)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, embeddings: np.ndarray, records: list[dict]) -> list[int]:
        """Add (n, dim) embeddings of `records`; return their new ids."""
        x = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1, self.dim)
        ids = np.arange(self.next_id, self.next_id + len(x), dtype=np.int64)
        if len(x):
            self.index.add_with_ids(x, ids)
        for i, rec in zip(ids, records):
            self.items[int(i)] = {k: rec.get(k, "") for k in ("path", "singer", "song")}
        self.next_id += len(x)
        return [int(i) for i in ids]

    def search(self, embedding, k: int = 10) -> list[Hit]:
        """The k nearest recordings to one embedding, nearest first."""
        check_k(k)
        q = np.ascontiguousarray(embedding, dtype=np.float32).reshape(1, self.dim)
        dist, ids = self.index.search(q, min(k, len(self)))
        return [Hit(int(i), float(d), **self.items[int(i)])
                for d, i in zip(dist[0], ids[0]) if i >= 0]

    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.model, "dim": self.dim, "next_id": self.next_id,
                "count": len(self), "items": {str(i): v for i, v in self.items.items()}}
        faiss.write_index(self.index, str(folder / f"{INDEX_FILE}.tmp"))
        (folder / f"{ITEMS_FILE}.tmp").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(folder / f"{INDEX_FILE}.tmp", folder / INDEX_FILE)
        os.replace(folder / f"{ITEMS_FILE}.tmp", folder / ITEMS_FILE)

    @classmethod
    def load(cls, folder) -> "VoiceIndex":
        folder = Path(folder)
        try:
            meta = json.loads((folder / ITEMS_FILE).read_text(encoding="utf-8"))
            index = faiss.read_index(str(folder / INDEX_FILE))
            items = {int(i): v for i, v in meta["items"].items()}
            loaded = cls(meta["model"], meta["dim"], index, items, meta["next_id"])
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as e:
            raise CorruptIndexError(folder, f"not a readable voice index ({e!r})") from None
        if index.ntotal != meta.get("count"):
            raise CorruptIndexError(folder, f"index.faiss holds {index.ntotal} vectors but "
                                            f"items.json lists {meta.get('count')}")
        return loaded


def _embed(embedder, records: list[dict], progress) -> tuple[np.ndarray, list[dict], dict]:
    ok, failed = embedder.embed_many([r["path"] for r in records], progress=progress)
    kept = [r for r in records if r["path"] in ok]
    x = np.stack([ok[r["path"]] for r in kept]) if kept else np.zeros((0, embedder.dim))
    return x, kept, failed


def build(source, model, out, progress=None, overwrite: bool = False
          ) -> tuple[VoiceIndex, dict]:
    """Embed every recording of `source` (folder or manifest) with the exported `model`
    and save the index to `out`; return (index, {path: error} of skipped files). An
    existing index at `out` is replaced only with `overwrite` (`add` extends one)."""
    from singer_zoo.inference import load

    out = Path(out)
    if out.exists() and not overwrite:
        what = "an index" if (out / ITEMS_FILE).exists() else "a file or folder"
        raise ConfigError(f"{out}: {what} already exists there; use `index add` to extend "
                          f"an index, or overwrite (--overwrite) to replace it")
    records = collect(source)
    embedder = load(model)
    x, kept, failed = _embed(embedder, records, progress)
    idx = VoiceIndex(str(embedder.path), embedder.dim)
    idx.add(x, kept)
    idx.save(out)
    return idx, failed


def add(index_folder, files, model=None, progress=None) -> tuple[list[int], dict]:
    """Embed `files` with the index's model (or `model`, e.g. after moving the export)
    and add them; return (new ids, {path: error} of skipped files). A file already in the
    index (or listed twice) is skipped with a message: it would be a duplicate hit."""
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
    """The k recordings of the index nearest to the recording `audio`, embedded with the
    index's model (or `model`)."""
    from singer_zoo.inference import load

    check_k(k)  # before the model loads (seconds)
    idx = VoiceIndex.load(index_folder)
    return idx.search(load(model or idx.model).embed(audio), k)
