"""The zoo's registry: named configs in the package's `zoo_configs/*.yaml`, one per table row.

`list_models()` gives the names, `get_config(name)` the `ZooConfig`; an unknown name raises
`UnknownNameError` listing the valid ones. The folder can be overridden with the
SINGER_ZOO_CONFIGS environment variable (for users' own rows); a package installed without
its configs raises `MissingPackageData` (`singer_zoo.resources`).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.resources import MissingPackageData, configs_dir


@functools.cache
def _load_all(folder: str) -> dict[str, ZooConfig]:
    configs = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        cfg = ZooConfig.from_yaml(path)
        if cfg.name != path.stem:
            raise ConfigError(f"{path}: name {cfg.name!r} must equal the file name {path.stem!r}")
        configs[cfg.name] = cfg
    return configs


def all_configs() -> dict[str, ZooConfig]:
    configs = _load_all(str(configs_dir()))
    if not configs:
        raise MissingPackageData("zoo configs (*.yaml)", configs_dir())
    return dict(configs)


def list_models() -> list[str]:
    """Names of every model in the zoo, Table 1 rows first, then Table 2, then our own;
    within a table in the paper's row order (`paper.table_row`), then by name.

    Returns:
        The names `get_config` and `build_model` accept (36 with the shipped configs).

    Example:
        >>> singer_zoo.list_models()[:2]
        ['t1_cnn_shallow_none', 't1_cnn_shallow_max']
    """
    order = {"table1": 0, "table2": 1, "beyond": 2}
    cfgs = all_configs()
    return sorted(cfgs, key=lambda n: (order[cfgs[n].table],
                                       cfgs[n].paper.get("table_row", float("inf")), n))


def get_config(name_or_path) -> ZooConfig:
    """A zoo config by registered name, or from a YAML file path.

    Args:
        name_or_path: a name of `list_models()` or a .yaml/.yml file.

    Returns:
        The validated `ZooConfig` (features, arch, train sections and paper metadata).

    Raises:
        UnknownNameError: an unknown name (the message lists the valid ones).

    Example:
        >>> singer_zoo.get_config("mobile_resnext_attention").arch.embedding_dim
        16
    """
    p = Path(os.fspath(name_or_path))
    if p.suffix in (".yaml", ".yml") and p.exists():
        return ZooConfig.from_yaml(p)
    cfgs = all_configs()
    if str(name_or_path) not in cfgs:
        raise UnknownNameError("model", str(name_or_path), cfgs)
    return cfgs[str(name_or_path)]
