"""The config's `data:` section: which files a run reads (training, held-out, validation, items) and how."""
from __future__ import annotations

import dataclasses
import enum


class DataFormat(str, enum.Enum):
    CSV = "csv"
    TFRECORD = "tfrecord"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The data files and how to read them.

    CSV (`format: csv`): fields split on `csv_delimiter` (one character: "," by default, "\t" for
    Criteo's tab-separated files); sequence fields split again on `sequence_delimiter`.  Each
    file's first line is its header unless `columns` names the columns of header-less files
    (then line 1 is the first row, as error messages count it).  A name ending in `.gz` is
    gunzipped.  TFRecord (`format: tfrecord`): serialized tf.train.Example records.
    """

    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    label: str = ""  # the label column: shorthand for the one binary task (`tasks:`, pfd_tf.config.tasks)
    format: DataFormat = DataFormat.CSV
    sequence_delimiter: str = "|"
    csv_delimiter: str = ","  # one character; a tab is "\t" in double quotes in YAML (Criteo)
    # CSV files without a header line: their columns' names, in order; every line is data (Criteo's
    # files).  Empty: each file's first line is its header, naming its columns.
    columns: tuple[str, ...] = ()
    # Where the vocabularies of features with `min_count` are, one `<feature name>.txt` each, as
    # pfd-vocab writes them.  Empty: the run counts them from the training files as it starts.
    vocabulary_dir: str = ""
    shuffle_buffer: int = 10_000
    # Keep the parsed, encoded training rows in memory after the first epoch (data that
    # fits in RAM and is read for several epochs); rows are reshuffled every epoch.
    cache: bool = False
    # two_tower: the items the retrieval index holds (CSV globs; default: the train files)
    item_files: tuple[str, ...] = ()
    item_id_column: str = "item_id"
    # Validation files.  pfd-compare: what its learning-rate choice evaluates on, held out of the training
    # files for that choice only (default: the last training file, i.e. the last day).  pfd-train: what
    # train.early_stopping scores on (trained on too with train.merge_validation); otherwise unused.
    validation_files: tuple[str, ...] = ()
    # Request-grouped batches (`pfd_tf.data.grouped`, `pfd_tf.config.grouping`): the columns whose values name a
    # group (a request id; a user and a day), whose rows a batch keeps whole; empty: rows, not groups.
    group_by: tuple[str, ...] = ()
    groups_per_batch: int = 0  # whole groups a batch; 0: about train.batch_size rows' worth

    @property
    def header(self) -> bool:
        """Each CSV file's first line names its columns (no `columns` given)."""
        return not self.columns
