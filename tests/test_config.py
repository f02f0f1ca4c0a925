"""The config dataclasses validate on creation, reject unknown fields with the valid ones,
stay frozen, and round-trip through dicts and YAML with errors naming the file."""
from __future__ import annotations

import dataclasses

import pytest

from singer_zoo.config import ArchConfig, FeatureConfig, TrainConfig, ZooConfig
from singer_zoo.errors import ConfigError


@pytest.mark.parametrize("cls", [FeatureConfig, ArchConfig, TrainConfig])
def test_sections_round_trip_and_reject_unknown_fields(cls):
    default = cls()
    assert cls.from_dict(default.to_dict()) == default
    assert cls.from_dict(None) == default
    with pytest.raises(ConfigError, match=rf"{cls.__name__}: unknown field\(s\) \['hop'\]; "
                                          r"valid: \[.*'\w+'"):
        cls.from_dict({"hop": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.seed = 1  # any attribute: the instance is frozen


@pytest.mark.parametrize("cls, kwargs, problem", [
    (FeatureConfig, {"frontend": "stft"}, "frontend='stft' is not one of mel, cqt"),
    (FeatureConfig, {"n_fft": 0}, "n_fft must be a positive number, got 0"),
    (FeatureConfig, {"hop_length": 4096}, "hop_length must not exceed n_fft"),
    (FeatureConfig, {"window_hop_frames": 300}, "window_hop_frames must not exceed"),
    (FeatureConfig, {"frontend": "cqt", "n_bins": 120}, "above Nyquist"),
    (FeatureConfig, {"dft": "fft"}, "dft='fft' is not one of rfft, matmul"),
    (FeatureConfig, {"frontend": "cqt", "dft": "matmul"}, "dft 'matmul' is a Mel front end"),
    (ArchConfig, {"aggregation": "sum"}, "aggregation='sum' is not one of"),
    (ArchConfig, {"stages": [[]]}, "stages must be non-empty lists"),
    (ArchConfig, {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    (ArchConfig, {"stages": [[100]]}, "bottleneck width 50 .* not divisible by cardinality 4"),
    (ArchConfig, {"bn_momentum": 1.0}, r"bn_momentum must be in \(0, 1\), got 1.0"),
    (ArchConfig, {"bn_momentum": 0}, r"bn_momentum must be in \(0, 1\), got 0"),
    (TrainConfig, {"task": "triplet"}, "task='triplet' is not one of classifier, siamese"),
    (TrainConfig, {"batch_size": True}, "batch_size must be an integer, got True"),
    (TrainConfig, {"task": "siamese", "batch_size": 31}, "siamese batch_size must be even"),
    (TrainConfig, {"precise_bn_batches": -1}, "precise_bn_batches must be an integer >= 0"),
])
def test_invalid_values_name_the_section_and_field(cls, kwargs, problem):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}: .*{problem}"):
        cls(**kwargs)


def test_stages_become_tuples_and_lists_in_dicts():
    arch = ArchConfig(stages=[[64, 64], [128]])
    assert arch.stages == ((64, 64), (128,))
    assert arch.to_dict()["stages"] == [[64, 64], [128]]
    assert arch.pooling_factor == 8


def test_zoo_config_yaml_round_trip_and_errors_name_the_file(tmp_path):
    cfg = ZooConfig("my_row", "beyond", features=FeatureConfig(n_bins=64),
                    train=TrainConfig(task="siamese"), paper={"total_params": 1000})
    path = tmp_path / "my_row.yaml"
    cfg.to_yaml(path)
    assert ZooConfig.from_yaml(path) == cfg
    assert cfg.replace(train={"max_epochs": 5}).train == TrainConfig(task="siamese",
                                                                     max_epochs=5)
    with pytest.raises(ConfigError, match=r"ZooConfig: unknown field\(s\) \['extra'\]"):
        ZooConfig.from_dict({**cfg.to_dict(), "extra": 1})
    with pytest.raises(ConfigError, match="name and table are required"):
        ZooConfig.from_dict({"name": "x"})
    with pytest.raises(ConfigError, match="name must be letters"):
        ZooConfig("my row", "beyond")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntable: beyond\ntrain: {task: siamese}\narch: {dropout: 2}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: ArchConfig: dropout"):
        ZooConfig.from_yaml(bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        ZooConfig.from_yaml(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml: a zoo config must be a YAML mapping"):
        ZooConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="missing.yaml: cannot read config"):
        ZooConfig.from_yaml(tmp_path / "missing.yaml")


def test_dft_is_written_only_when_not_the_default_and_not_part_of_equality(tmp_path):
    """`dft` changes how the spectrum is computed, not its values: configs differing only
    in it are equal (a pack serves both), older dicts (no `dft`) read as "rfft", and a
    row's "matmul" survives its YAML."""
    mm = FeatureConfig(n_fft=1024, hop_length=1024, dft="matmul")
    assert "dft" not in FeatureConfig().to_dict()
    assert mm.to_dict()["dft"] == "matmul"
    assert mm == FeatureConfig(n_fft=1024, hop_length=1024)
    assert FeatureConfig.from_dict(mm.to_dict()).dft == "matmul"
    cfg = ZooConfig(name="x", table="beyond", features=mm, train=TrainConfig(task="siamese"))
    cfg.to_yaml(tmp_path / "x.yaml", minimal=True)
    assert "dft: matmul" in (tmp_path / "x.yaml").read_text()
    assert ZooConfig.from_yaml(tmp_path / "x.yaml").features.dft == "matmul"
