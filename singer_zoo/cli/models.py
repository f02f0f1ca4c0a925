"""`singer-zoo models`: list the zoo, one model per line, name first (after a "# " header).

Columns: name, table, block, filters, aggregation, frontend, task, our total parameters and
the paper's (its "total params" column: Table 1 without the softmax layer, Table 2 with the
16-d output). Counts are computed analytically (`singer_zoo.models.table.count_params`),
so no model, not even a 200M-parameter one, is built.
"""
from __future__ import annotations

from singer_zoo.registry import all_configs, list_models

COLUMNS = ("name", "table", "block", "filters", "aggregation", "frontend", "task", "params",
           "paper_params")


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the model zoo",
                              description="List the zoo's models, one per line, name first.")
    p.add_argument("--table", choices=("table1", "table2", "beyond"),
                   help="only the rows of this table")
    p.add_argument("--names", action="store_true", help="print the names only")
    p.set_defaults(func=run)


def rows(table: str | None = None) -> list[tuple]:
    """One tuple per model (COLUMNS order), in `list_models()` order."""
    from singer_zoo.models.table import count_params

    cfgs = all_configs()
    out = []
    for name in list_models():
        cfg = cfgs[name]
        if table and cfg.table != table:
            continue
        paper = cfg.paper.get("total_params")
        filters = cfg.paper.get("filters") or ", ".join(
            str(w) for w in (cfg.arch.stem_filters, *(w for s in cfg.arch.stages for w in s)))
        out.append((name, cfg.table, cfg.arch.block, filters.replace(" ", ""),
                    cfg.arch.aggregation, cfg.features.frontend, cfg.train.task,
                    count_params(cfg).paper_total, paper if paper is not None else "-"))
    return out


def run(args) -> int:
    table = rows(args.table)
    if args.names:
        print("\n".join(r[0] for r in table))
        return 0
    lines = [("# " + COLUMNS[0], *COLUMNS[1:])] + [tuple(str(v) for v in r) for r in table]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    return 0
