"""The paper's experiments end to end: Table 1 (singer classification, k-fold CV) and
Table 2 (performance embedding), each row trained, evaluated and reported (docs/experiments.md)."""
from singer_zoo.experiments.runner import Budget, run_table1, run_table2, table_configs

__all__ = ["Budget", "run_table1", "run_table2", "table_configs"]
