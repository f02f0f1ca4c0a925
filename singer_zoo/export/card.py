"""The model card `metadata.json` of an exported folder, and its integrity check.

The card records what the model is (name, ZooConfig, front-end parameters), how it was
made (training data and metrics from the run folder when present, package versions,
creation time), how well the exported files reproduce the Keras model (`checks`), and the
sha256 of every other file in the folder (`files`). `verify(folder)` recomputes the hashes
before anything is loaded, so a tampered, truncated or extra file fails with an
`IntegrityError` naming it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from singer_zoo.errors import IntegrityError
from singer_zoo.resources import sha256_file

CARD = "metadata.json"
FORMAT = 1
# entries export writes itself (callers may add others: training data, licences, results)
RESERVED = frozenset({"format", "name", "source", "config", "frontend", "embedding_dim",
                      "tflite", "onnx", "training", "metrics", "checks", "check_audio", "versions",
                      "created", "files"})
ORIGIN = "origin"  # a published card's URL of its embedder.keras (singer_zoo.pretrained)


def file_hashes(folder) -> dict[str, str]:
    """{relative POSIX path: sha256} of every file under `folder` except the card."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): sha256_file(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CARD}


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    import singer_zoo

    return {"singer_zoo": singer_zoo.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__}


def write_card(folder, card: dict) -> dict:
    """Complete `card` with format, versions, creation time and file hashes; write it."""
    card = {"format": FORMAT, **card, "versions": versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": file_hashes(folder)}
    Path(folder, CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return card


def read_card(folder) -> dict:
    path = Path(folder, CARD)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(path, "missing: not an exported singer_zoo model") from None
    except (OSError, ValueError) as e:
        raise IntegrityError(path, f"unreadable model card ({e})") from None
    if not isinstance(card, dict) or not isinstance(card.get("files"), dict):
        raise IntegrityError(path, "model card has no 'files' table")
    return card


def set_verification(folder, entry: dict, heldout: dict | None = None) -> dict:
    """Store `entry` (the calibrated same-singer threshold `Embedder.verify` uses, with its
    false-accept / false-reject rates; `singer-zoo heldout --write-thresholds`) as the card's
    "verification", and `heldout` (the held-out evaluation table it was calibrated with) as
    its "heldout"; the card is not among the hashed files, so `verify` still passes."""
    card = read_card(folder)
    card["verification"] = entry
    if heldout is not None:
        card["heldout"] = heldout
    Path(folder, CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return card


def verify(folder) -> dict:
    """Check every file against the card's sha256 (and that no file was added); return
    the card. Raises IntegrityError naming the first offending file."""
    folder = Path(folder)
    card = read_card(folder)
    listed = card["files"]
    for rel, digest in listed.items():
        path = folder / rel
        if os.path.isabs(rel) or ".." in Path(rel).parts:
            raise IntegrityError(folder / CARD, f"file entry {rel!r} escapes the folder")
        if not path.is_file():
            raise IntegrityError(path, "listed in metadata.json but missing")
        if sha256_file(path) != digest:
            raise IntegrityError(path, "sha256 differs from metadata.json (modified or "
                                       "corrupted file)")
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and p.name != CARD and rel not in listed:
            raise IntegrityError(p, "not listed in metadata.json (unexpected file)")
    return card
