"""The checks of the `data:` section: the files listed, the CSV layout (`csv_delimiter`, header-less
`columns`), and no label column declared as a feature."""
from __future__ import annotations

from pfd_tf.config.data import DataFormat
from pfd_tf.config.errors import ConfigError
from pfd_tf.config.grouping import unique_columns
from pfd_tf.config.model import Architecture
from pfd_tf.config.schema import Config
from pfd_tf.config.task_checks import label_columns


def validate_data_files(config: Config) -> None:
    """Training and held-out files are listed; no task's label column is also a feature."""
    names = {spec.name for spec in config.features}
    data = config.data
    if not data.train_files:
        raise ConfigError("data.train_files: list at least one file or glob")
    if not data.eval_files:
        raise ConfigError("data.eval_files: list at least one file or glob")
    for label, key in label_columns(config).items():
        if label in names:
            raise ConfigError(f"{key}: {label!r} is also declared as a feature")


def validate_data_layout(config: Config) -> None:
    """`data.csv_delimiter` is one character; `data.columns` (header-less CSV) names every column read, once."""
    data = config.data
    if len(data.csv_delimiter) != 1 or data.csv_delimiter in "\r\n\"":
        raise ConfigError(f"data.csv_delimiter: must be one character other than a quote or a line break, got "
                          f"{data.csv_delimiter!r} (a tab: csv_delimiter: \"\\t\", in double quotes)")
    if data.shuffle_buffer <= 0:
        raise ConfigError(f"data.shuffle_buffer: must be positive (the rows of a window shuffled together), "
                          f"got {data.shuffle_buffer}")
    if data.vocabulary_dir and not any(spec.min_count for spec in config.features):
        raise ConfigError("data.vocabulary_dir: no feature has min_count (only those read their vocabulary there)")
    if not data.columns:
        return
    if data.format is not DataFormat.CSV:
        raise ConfigError("data.columns: names the columns of header-less CSV files; not used with data.format: "
                          f"{data.format.value}")
    seen = unique_columns(data.columns, "data.columns")
    for label, key in label_columns(config).items():
        if label not in seen:
            raise ConfigError(f"data.columns: the label column {label!r} ({key}) is not among them")
    for i, spec in enumerate(config.features):
        if spec.source not in seen:
            raise ConfigError(f"data.columns: has no column {spec.source!r}, which features[{i}] ({spec.name!r}) reads")
    if config.model.architecture is Architecture.TWO_TOWER:
        raise ConfigError("data.columns: a two_tower model reads its item files by their header; "
                          "header-less files are not supported there")
