"""The paper's figures as PNG files (matplotlib, Agg backend: no display needed).

- `plot_loss_curves`: train / validation loss over epochs, best validation epoch marked
  (Figure 3); several runs may share one panel.
- `plot_tsne`: t-SNE 2-D projections of performance vectors, one column per method, the top
  row coloured by singer and the bottom row by song (Figures 4 and 7).
- `plot_knn_bars`: leave-one-out k-NN accuracies, k x method grouped bars, singer and song
  panels (Figure 5).

Every function writes exactly `out_png` (parent folders created) and returns its path.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from singer_zoo.errors import ConfigError, FileProblem  # noqa: E402

MISSING = ("", "na", "nan", "none")
EXACT_TSNE_MAX = 500


def _save(fig, out_png) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, format="png")
    plt.close(fig)
    return out


def _float(v) -> float:
    return math.nan if v is None or str(v).strip().lower() in MISSING else float(v)


def read_history_csv(path) -> dict[str, list]:
    """A Keras CSVLogger history (the trainer's history.csv) as {column: values}: `epoch`
    as ints (from 0), the others as floats, NaN where a value was not logged ("NA" or
    empty). Raises FileProblem if the file cannot be read."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise FileProblem(path, f"cannot read the loss history ({e.strerror})") from None
    cols = rows[0].keys() if rows else []
    return {c: [int(r[c]) if c == "epoch" else _float(r[c]) for r in rows] for c in cols}


def read_history(history, validation_every: int | None = None):
    """(epochs, train loss, validation loss) arrays, epochs counted from 1, validation loss
    NaN where it was not computed. `history` is a CSV path (Keras CSVLogger: columns epoch
    (from 0), loss, val_loss; empty or "NA" = not computed), a dict of lists, or a Keras
    `History`. A `val_loss` list shorter than `loss` (Keras' History with validation_freq)
    is placed at epochs validation_every, 2 * validation_every, ..."""
    if isinstance(history, (str, Path)):
        cols = read_history_csv(history)
        if not cols.get("loss"):
            raise FileProblem(history, "a loss history CSV needs a 'loss' column and rows")
        history = {"loss": cols["loss"], "val_loss": cols.get("val_loss")}
    history = getattr(history, "history", history)
    if "loss" not in history or not len(history["loss"]):
        raise ConfigError(f"a loss history needs a non-empty 'loss' list, got keys "
                          f"{sorted(history)}")
    loss = np.array([_float(v) for v in history["loss"]])
    val = np.array([_float(v) for v in history.get("val_loss") or []])
    if len(val) < len(loss):
        if not val.size:
            val = np.full(len(loss), np.nan)
        elif validation_every is None:
            raise ConfigError(f"{len(val)} validation losses for {len(loss)} epochs: pass "
                              f"validation_every to place them")
        else:
            placed = np.full(len(loss), np.nan)
            at = validation_every * np.arange(1, len(val) + 1) - 1  # 0-based epochs
            if at[-1] >= len(loss):
                raise ConfigError(f"{len(val)} validation losses every {validation_every} "
                                  f"epochs do not fit in {len(loss)} epochs")
            placed[at] = val
            val = placed
    elif len(val) > len(loss):
        raise ConfigError(f"more validation losses ({len(val)}) than epochs ({len(loss)})")
    return np.arange(1, len(loss) + 1), loss, val


def best_epoch(epochs, val_loss) -> tuple[int, float]:
    """(epoch, loss) of the lowest validation loss (the first one on ties); NaN = epoch
    without validation."""
    val = np.asarray(val_loss, dtype=np.float64)
    if np.isnan(val).all():
        raise ConfigError("no validation loss to pick the best epoch from")
    i = int(np.nanargmin(val))
    return int(np.asarray(epochs)[i]), float(val[i])


def plot_loss_curves(histories, out_png, title: str, validation_every: int | None = None
                     ) -> Path:
    """Figure 3: train and validation loss per epoch, a dot on the best validation epoch.

    `histories` is one history (see `read_history`) or a mapping label -> history; each run
    gets one colour, solid for validation and thin for training."""
    if isinstance(histories, Mapping) and "loss" not in histories:
        runs = dict(histories)
    else:
        runs = {"": histories}
    if not runs:
        raise ConfigError("plot_loss_curves needs at least one history")
    curves = {label: read_history(h, validation_every) for label, h in runs.items()}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, (label, (epochs, loss, val)) in enumerate(curves.items()):
        color = f"C{n % 10}"
        prefix = f"{label}: " if label else ""
        ax.plot(epochs, loss, color=color, lw=0.8, alpha=0.6, label=f"{prefix}train")
        has_val = ~np.isnan(val)
        if has_val.any():
            ax.plot(epochs[has_val], val[has_val], color=color, lw=1.8, label=f"{prefix}valid")
            best, best_val = best_epoch(epochs, val)
            ax.plot(best, best_val, "o", color=color, ms=7, mec="black",
                    label=f"{prefix}best valid (epoch {best})")
    ax.set(xlabel="Epochs", ylabel="Loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_png)


def _colours(labels: np.ndarray):
    """(sorted distinct labels, one RGBA colour per point): tab10/tab20, else a ramp."""
    names = sorted(set(labels.tolist()))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20" if len(names) <= 20
                        else "turbo")
    palette = [cmap(i if len(names) <= 20 else i / max(len(names) - 1, 1))
               for i in range(len(names))]
    lookup = dict(zip(names, palette))
    return names, [lookup[v] for v in labels.tolist()]


def tsne_2d(vectors, seed: int = 0) -> np.ndarray:
    """(n, 2) t-SNE projection, seeded. Perplexity min(30, (n - 1) / 3) so that small sets
    work; the exact gradient up to EXACT_TSNE_MAX points (faster there than Barnes-Hut),
    Barnes-Hut above."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 4 or not np.isfinite(x).all():
        raise ConfigError(f"t-SNE needs a finite (n >= 4, D) array, got shape {x.shape}")
    perplexity = min(30.0, (len(x) - 1) / 3)
    method = "exact" if len(x) <= EXACT_TSNE_MAX else "barnes_hut"
    return TSNE(n_components=2, perplexity=perplexity, init="pca", method=method,
                random_state=seed).fit_transform(x)


def plot_tsne(vectors, singer_labels, song_labels, out_png, title: str, seed: int = 0
              ) -> Path:
    """Figures 4 / 7: t-SNE of performance (or clip) vectors. `vectors` is an (n, D) array
    or a mapping method -> (n, D) array (one column each, rows aligned with the labels).
    One row of panels per labelling: by singer, and by song unless there is a single song
    (speech data)."""
    methods = dict(vectors) if isinstance(vectors, Mapping) else {"": vectors}
    labels = {"singer": np.asarray(singer_labels), "song": np.asarray(song_labels)}
    if len(np.unique(labels["song"])) < 2:  # speech, or one song: nothing to colour by
        del labels["song"]
    for name, v in methods.items():
        for kind, lab in labels.items():
            if lab.shape != (len(np.asarray(v)),):
                raise ConfigError(f"{name or 'vectors'}: {len(np.asarray(v))} vectors but "
                                  f"{kind}_labels has shape {lab.shape}")
    cols = len(methods)
    fig, axes = plt.subplots(len(labels), cols, figsize=(4.2 * cols + 1.6, 4 * len(labels)),
                             squeeze=False)
    for c, (name, v) in enumerate(methods.items()):
        xy = tsne_2d(v, seed)  # (n, 2)
        for r, (kind, lab) in enumerate(labels.items()):
            names, colours = _colours(lab)
            ax = axes[r, c]
            ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=28, edgecolors="black", linewidths=0.3)
            ax.set_title(f"{name} - {kind.capitalize()}" if name else kind.capitalize(),
                         fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == cols - 1 and len(names) <= 20:
                handles = [plt.Line2D([], [], ls="", marker="o", color=colours[lab.tolist()
                                      .index(n)]) for n in names]
                ax.legend(handles, names, fontsize=7, loc="center left",
                          bbox_to_anchor=(1.0, 0.5), title=kind, title_fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_knn_bars(results: Mapping, out_png, title: str = "k-NN classification") -> Path:
    """Figure 5: accuracy bars, groups = k, one bar per method; left panel singer, right
    panel song classification. `results` is `knn.knn_table`'s output:
    {"singer": {method: {k: accuracy}}, "song": {...}}."""
    tasks = [t for t in ("singer", "song") if t in results]
    if not tasks or not all(results[t] for t in tasks):
        raise ConfigError("plot_knn_bars needs results['singer'] and/or results['song'] "
                          "mapping method -> {k: accuracy}")
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        methods = list(results[task])
        ks = sorted({int(k) for m in methods for k in results[task][m]})
        width = 0.8 / len(methods)
        for n, m in enumerate(methods):
            acc = [results[task][m].get(k, results[task][m].get(str(k), np.nan)) for k in ks]
            ax.bar(np.arange(len(ks)) + (n - (len(methods) - 1) / 2) * width, acc, width,
                   label=m, color=f"C{n % 10}")
        ax.set_xticks(np.arange(len(ks)), [f"k={k}" for k in ks])
        ax.set(ylim=(0, 1), ylabel="Accuracy", title=f"{task.capitalize()} Classification")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_png)
