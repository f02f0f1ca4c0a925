"""The shipped embedders: small sources in the package, deployable files built on first use.

A shipped embedder is a folder of package data, `singer_zoo/shipped/<name>/`, holding

    embedder.keras   the single-tower Keras embedder (the weights: the only large file)
    metadata.json    its model card (config, training data, held-out results, the checks of
                     the export it was published from), whose `files` table lists the
                     sha256 of embedder.keras only

The SavedModel and TFLite files are not shipped (they are 2-4x the size of the weights, and
change with every re-export): `build(name)` recreates them with the package's own `export`
from the verified embedder.keras into `cache_dir()/exported/<name>-<sha12>/`, once; the
export's equality checks run again on the rebuilt files, the new card records their sha256,
and every later `singer_zoo.load(name)` verifies them against it before loading (the
cached card's `rebuilt_from` holds the sha256 of the shipped file it was built from and the
export's `GRAPH_VERSION`: a cache built by an older export graph is rebuilt). A card may
give an `origin` URL instead of shipping embedder.keras (a model hosted elsewhere): the file
is then fetched with `resources.get_file`, checked against the card's sha256.

`publish(export_folder)` is how a trained run joins the shipped set (after `singer-zoo
export`): `singer-zoo pretrained publish EXPORT_DIR` (see docs/export.md, recipes/pretrain.sh).
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from singer_zoo.errors import IntegrityError, UnknownNameError
from singer_zoo.export import card as card_mod
from singer_zoo.export import GRAPH_VERSION, export
from singer_zoo.export import publish as publish_mod
from singer_zoo.resources import MissingPackageData, cache_dir, get_file, package_path

KERAS = "embedder.keras"
REBUILT_FROM = "rebuilt_from"  # the cached card's record of the shipped embedder.keras
REBUILT_MODES = ("float32", "int8")  # TFLite modes that need no calibration audio
log = logging.getLogger(__name__)


def shipped_dir() -> Path:
    """The package's folder of shipped embedders (`MissingPackageData` if absent)."""
    return package_path("shipped", what="shipped embedders (singer_zoo/shipped/)")


def available() -> list[str]:
    """Names of the shipped embedders."""
    return sorted(p.name for p in shipped_dir().iterdir() if (p / card_mod.CARD).is_file())


def source(name: str) -> tuple[Path, dict]:
    """(verified embedder.keras path, card) of the shipped embedder `name`.

    Raises:
        UnknownNameError: no such shipped embedder (lists the valid names).
        MissingPackageData: the card is there but neither embedder.keras nor an origin URL.
        IntegrityError: embedder.keras differs from the card's sha256.
    """
    folder = shipped_dir() / name
    if not (folder / card_mod.CARD).is_file():
        raise UnknownNameError("shipped embedder", name, available())
    card = card_mod.read_card(folder)
    digest = card["files"].get(KERAS)
    if digest is None:
        raise IntegrityError(folder / card_mod.CARD, f"model card lists no {KERAS}")
    if (folder / KERAS).is_file():
        card_mod.verify(folder)
        return folder / KERAS, card
    if card.get(card_mod.ORIGIN):
        path = get_file(KERAS, card[card_mod.ORIGIN], digest,
                        cache_subdir=f"pretrained/{name}-{digest[:12]}")
        shutil.copyfile(folder / card_mod.CARD, path.parent / card_mod.CARD)
        return path, card
    raise MissingPackageData(f"{KERAS} of the shipped embedder {name!r} (and its card gives "
                             f"no origin URL)", folder / KERAS)


def build(name: str, force: bool = False) -> Path:
    """The folder of the deployable export of shipped embedder `name`, built into the cache
    on first use (or when `force`, or when the cached copy fails its integrity check).

    Args:
        name: a name of `available()`.
        force: rebuild even if a valid cached export exists.

    Returns:
        `cache_dir()/exported/<name>-<sha12>/`: saved_model/, TFLite files, embedder.keras,
        metadata.json, as `singer-zoo export` writes them.

    Example:
        >>> folder = build("mobile_resnext_attention")  # ~10 s the first time, then instant
    """
    keras_path, card = source(name)
    digest = card["files"][KERAS]
    out = cache_dir() / "exported" / f"{name}-{digest[:12]}"
    if not force and (out / card_mod.CARD).is_file():
        try:
            built = card_mod.verify(out).get(REBUILT_FROM, {})
            if built.get("sha256") == digest and built.get("graph") == GRAPH_VERSION:
                return out  # else built from another file or by an older export graph
        except IntegrityError as e:
            log.warning("rebuilding %s: the cached export failed its check (%s)", name, e)
    modes = tuple(m for m in card.get("tflite", {}) if m in REBUILT_MODES)
    log.warning("building the SavedModel/TFLite files of %s into %s (once)", name, out)
    rebuilt = {REBUILT_FROM: {"sha256": digest, "graph": GRAPH_VERSION,
                              "shipped": f"singer_zoo/shipped/{name}"}}
    export(keras_path.parent, out, modes, name=card["name"], onnx=bool(card.get("onnx")),
           card_extra=rebuilt)
    return out


def publish(export_folder, into=None, origin: str | None = None) -> Path:
    """Add (or replace) a shipped embedder from a `singer-zoo export` folder.

    Writes `into/<name>/` (default: the package's `shipped/` folder, i.e. the source
    checkout when installed editable) atomically: embedder.keras (unless `origin` is given:
    the URL it will be fetched from) and metadata.json, the export's card with `files`
    reduced to embedder.keras (the rebuilt files get their own hashes in the cache).

    Args:
        export_folder: an exported folder (verified first).
        into: the shipped folder to write into.
        origin: URL of embedder.keras when it is hosted instead of shipped.

    Returns:
        The published folder.

    Example:
        >>> publish("runs/pretrain/export/mobile_resnext_attention")
    """
    src = Path(export_folder)
    card = card_mod.verify(src)
    into = Path(into) if into is not None else Path(__file__).resolve().parent / "shipped"
    out = into / card["name"]
    into.mkdir(parents=True, exist_ok=True)
    staging = publish_mod.staging_dir(out)
    try:
        card = {k: v for k, v in card.items() if k != REBUILT_FROM}
        card["files"] = {KERAS: card["files"][KERAS]}
        if origin:
            card[card_mod.ORIGIN] = origin
        else:
            shutil.copyfile(src / KERAS, staging / KERAS)
        (staging / card_mod.CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
        publish_mod.publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
