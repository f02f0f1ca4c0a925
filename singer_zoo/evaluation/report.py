"""Result tables in the paper's layout, next to the paper's own figures, as markdown and
JSON.

- Table 1 (singer classification): Feature | # of CNN filters | Global aggregation |
  # of CNN params | # of total params | Train accuracy | Test accuracy | paper train |
  paper test.
- Table 2 (performance embedding): ... | Test loss | paper test loss (4 decimals, as the
  paper prints losses).

A result row is a dict with "name" (a zoo model, or "baseline" for the SVM) and what was
measured: "cnn_params", "total_params", "train_accuracy" / "test_accuracy" (a number with
"<key>_std", or the list of per-fold values) and "test_loss". Model columns come from the
model's `ZooConfig` (arch and `paper` metadata); the paper's baseline row is `PAPER_BASELINE`.
Rows are printed in the paper's order (`paper.table_row`).
"""
from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Mapping, Sequence

import numpy as np

from singer_zoo.config import BLOCK_NAMES
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.metrics import format_mean_std, summarise_folds
from singer_zoo.registry import get_config

# The paper's Table 1 baseline row (SVM on handcrafted features); no zoo config holds it.
PAPER_BASELINE = {"train_accuracy": 0.516, "train_accuracy_std": 0.006,
                  "test_accuracy": 0.273, "test_accuracy_std": 0.04}
COLUMNS = ("Model", "Feature", "# of CNN filters", "Global aggregation", "# of CNN params",
           "# of total params")
TABLE1 = COLUMNS + ("Train accuracy", "Test accuracy", "paper train", "paper test")
TABLE2 = COLUMNS + ("Test loss", "paper test loss")


def _config(name: str, configs: Mapping | None):
    return configs[name] if configs is not None and name in configs else get_config(name)


def _params(n) -> str:
    return "" if n is None else f"{n / 1000:.0f}k" if n >= 1000 else str(int(n))


def _mean_std(row: Mapping, key: str, digits: int = 3) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return format_mean_std(*summarise_folds(value), digits=digits)
    return format_mean_std(value, row.get(f"{key}_std"), digits=digits)


def _model_cells(row: Mapping, configs) -> tuple[list[str], dict]:
    """The first six cells of a row and the paper metadata of its model."""
    if row["name"] == "baseline":
        return ["baseline", "baseline", "", "", "", ""], PAPER_BASELINE
    cfg = _config(row["name"], configs)
    arch = cfg.arch
    feature = BLOCK_NAMES[arch.block]
    if cfg.features.frontend == "cqt":
        feature += "(CQT)"
    filters = ", ".join(str(w) for w in (arch.stem_filters, *(w for s in arch.stages
                                                                for w in s)))
    return [cfg.name, feature, filters, arch.aggregation, _params(row.get("cnn_params")),
            _params(row.get("total_params"))], cfg.paper


def _ordered(rows: Sequence[Mapping], configs) -> list[Mapping]:
    """The paper's row order: the baseline first, then by `paper.table_row`, then by name
    (rows of models the paper does not have come last)."""
    unnamed = [i for i, row in enumerate(rows) if not row.get("name")]
    if unnamed:
        raise ConfigError(f"result rows {unnamed} have no 'name' (a zoo model or 'baseline')")

    def key(row):
        if row["name"] == "baseline":
            return (0, 0, "")
        return (1, _config(row["name"], configs).paper.get("table_row", float("inf")),
                row["name"])

    return sorted(rows, key=key)


def _markdown(header: Sequence[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def table1_markdown(rows: Sequence[Mapping], configs: Mapping | None = None) -> str:
    """Table 1 (singer classification) as a markdown table; `configs` maps model names to
    `ZooConfig`s (default: the registry)."""
    body = []
    for row in _ordered(rows, configs):
        cells, paper = _model_cells(row, configs)
        body.append(cells + [_mean_std(row, "train_accuracy"), _mean_std(row, "test_accuracy"),
                             _mean_std(paper, "train_accuracy"),
                             _mean_std(paper, "test_accuracy")])
    return _markdown(TABLE1, body)


def table2_markdown(rows: Sequence[Mapping], configs: Mapping | None = None) -> str:
    """Table 2 (performance embedding: contrastive loss on the test set) as markdown."""
    body = []
    for row in _ordered(rows, configs):
        cells, paper = _model_cells(row, configs)
        body.append(cells + [_mean_std(row, "test_loss", 4), _mean_std(paper, "test_loss", 4)])
    return _markdown(TABLE2, body)


def knn_markdown(results: Mapping) -> str:
    """k-NN accuracies (`knn.knn_table` output) as rows task | method | k=1 | k=3 ..."""
    ks = sorted({int(k) for task in results.values() for r in task.values() for k in r})
    body = [[task, method] + [format_mean_std(acc[k]) if k in acc else
                              format_mean_std(acc[str(k)]) if str(k) in acc else ""
                              for k in ks]
            for task, methods in results.items() for method, acc in methods.items()]
    return _markdown(["Task", "Method"] + [f"k={k}" for k in ks], body)


def eer_markdown(results: Mapping[str, Mapping]) -> str:
    """{method: {pairs: EERResult or dict}} as rows method | pairs | EER | threshold."""
    body = []
    for method, by_pairs in results.items():
        for pairs, r in by_pairs.items():
            r = r.to_dict() if hasattr(r, "to_dict") else r
            body.append([method, pairs, format_mean_std(r["eer"]),
                         format_mean_std(r["threshold"], digits=4),
                         f"{r['n_positive']}/{r['n_negative']}"])
    return _markdown(["Method", "Pairs", "EER", "Threshold (squared distance)",
                      "positive/negative pairs"], body)


def skipped_markdown(rows: Sequence[Mapping]) -> str:
    """The recordings that rows left out ("<path>: <problem>", each `row["skipped"]`), each
    once, as a bullet list; empty when none was."""
    messages = sorted({m for row in rows for m in row.get("skipped", ())})
    return "".join(f"- {m}\n" for m in messages)


def _jsonable(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_report(out_md, table1: Sequence[Mapping] = (), table2: Sequence[Mapping] = (),
                 knn: Mapping | None = None, eer: Mapping | None = None,
                 configs: Mapping | None = None) -> tuple[Path, Path]:
    """Write the non-empty sections to `out_md` (markdown) and everything, as given, to the
    same name with suffix .json; return both paths."""
    out_md = Path(out_md)
    sections = [("Table 1: singer classification", table1, table1_markdown),
                ("Table 2: singing performance embedding (test contrastive loss)", table2,
                 table2_markdown)]
    parts = ["# Results\n"]
    parts += [f"## {title}\n\n{fn(rows, configs)}" for title, rows, fn in sections if rows]
    if knn:
        parts.append(f"## Leave-one-out k-NN accuracy (Figure 5)\n\n{knn_markdown(knn)}")
    if eer:
        parts.append(f"## Singer verification equal error rate\n\n{eer_markdown(eer)}")
    if skipped := skipped_markdown([*table1, *table2]):
        parts.append(f"## Recordings left out (could not be read)\n\n{skipped}")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(parts), encoding="utf-8")
    out_json = out_md.with_suffix(".json")
    data = {"table1": list(table1), "table2": list(table2), "knn": knn or {}, "eer": eer or {}}
    out_json.write_text(json.dumps(data, indent=2, default=_jsonable), encoding="utf-8")
    return out_md, out_json
