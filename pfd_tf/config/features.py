"""The schema of the config's `features:` list: what each feature is, and how its raw values become ids.

Part of `pfd_tf.config` (re-exported by `pfd_tf.config.schema`).
"""
from __future__ import annotations

import dataclasses
import enum


class FeatureKind(str, enum.Enum):
    CATEGORICAL = "categorical"  # one id per row, by vocabulary or hash buckets
    NUMERIC = "numeric"  # discretized by boundaries, as in the paper (Section 3, footnote 1), or fed as its value
    SEQUENCE = "sequence"  # a list of ids, padded/truncated to max_len

class Role(str, enum.Enum):
    REGULAR = "regular"  # available at training and at serving time
    PRIVILEGED = "privileged"  # available at training time only (post-event, interacted)

class Side(str, enum.Enum):
    USER = "user"
    ITEM = "item"
    CONTEXT = "context"

class NumericTransform(str, enum.Enum):
    """What a numeric feature's raw value x goes through first (before its boundaries, or its normalization)."""

    NONE = "none"
    LOG1P = "log1p"  # ln(1 + max(x, 0)): counts; a negative x counts as 0
    LOG_SQUARE = "log_square"  # x > 2: floor(ln(x)^2), else x (Criteo's winning transform, DeepCTR/FuxiCTR)

class NumericEncoding(str, enum.Enum):
    """How a numeric feature reaches the model (`pfd_tf.features`)."""

    # An embedding id, by `boundaries` (Section 3, footnote 1 of the PFD paper); or, with a vocabulary
    # (min_count, vocabulary_file, vocabulary, hash_buckets) instead, one per integer bin floor(transform(x)).
    BUCKET = "bucket"
    VALUE = "value"  # one embedding row times (transform(x) - mean) / std

class Derive(str, enum.Enum):
    """What a categorical feature takes of its column's value: all of it, or part of a YYMMDDHH hour (Avazu)."""

    NONE = "none"
    HOUR_OF_DAY = "hour_of_day"  # YYMMDDHH -> HH as "0".."23"
    WEEKDAY = "weekday"  # YYMMDDHH -> the day of the week, "0" (Monday) .. "6" (Sunday)

@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One input feature.

    `column` is the data column the feature reads (its name by default); two
    features may read one column, which is why export checks columns, not
    names, for privileged inputs.
    """

    name: str
    kind: FeatureKind
    dim: int
    role: Role = Role.REGULAR
    side: Side = Side.CONTEXT
    column: str = ""
    dtype: str = "string"  # raw type of categorical/sequence ids: string or int64
    hash_buckets: int = 0
    vocabulary: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()
    max_len: int = 0
    default: float = 0.0  # numeric value used for an empty CSV field, or one that is not finite
    transform: NumericTransform = NumericTransform.NONE  # numeric
    encoding: NumericEncoding = NumericEncoding.BUCKET  # numeric
    # encoding: value: x' = (transform(x) - mean) / std; std 0: both computed from the training files
    # when the run starts (model_dir/feature_stats.json, `with_feature_stats`).
    mean: float = 0.0
    std: float = 0.0
    # An id feature (categorical, sequence, numeric with integer bins: `as_category`) has exactly one of
    # hash_buckets, vocabulary, vocabulary_file and min_count.  vocabulary_file: one token per line,
    # line n (1-based) is id n, 0 the out-of-vocabulary id.  min_count: the tokens seen at least
    # min_count times in the training files, most frequent first, counted when the run starts
    # (`pfd_tf.data.vocab`; or beforehand by pfd-vocab into data.vocabulary_dir).  Either way the run
    # keeps its copy (model_dir/vocabularies/<name>.txt), which the export carries as an asset.
    vocabulary_file: str = ""
    min_count: int = 0
    # An empty value (numeric: an empty field, or any number that is not finite: NaN, +-inf; categorical:
    # "") gets an id of its own, the table's last row; without it a numeric empty value reads as `default`
    # (in training, evaluation and serving alike), a categorical one is out of vocabulary (hashed, with
    # hash_buckets).
    missing_id: bool = False
    derive: Derive = Derive.NONE  # categorical: what it takes of its column (two features may read one column)

    @property
    def source(self) -> str:
        return self.column or self.name

    @property
    def as_category(self) -> bool:
        """A bucketized numeric feature with a vocabulary instead of boundaries: its integer bin
        floor(transform(x)) is looked up like a category (Criteo's log-square bins, rare ones out of vocabulary)."""
        return (self.kind is FeatureKind.NUMERIC and self.encoding is NumericEncoding.BUCKET and not self.boundaries
                and bool(self.hash_buckets or self.vocabulary or self.vocabulary_file or self.min_count))

    @property
    def needs_vocabulary(self) -> bool:
        """Its vocabulary is a file the run copies into model_dir (`vocabulary_file`) or counts (`min_count`)."""
        return bool(self.vocabulary_file or self.min_count)

    @property
    def empty_value(self) -> float:
        """What an empty numeric field reads as: NaN (the missing id) with `missing_id`, else `default`."""
        return float("nan") if self.missing_id else self.default

    @property
    def as_value(self) -> bool:
        """A numeric feature fed as its normalized value (not bucketized into an id)."""
        return self.kind is FeatureKind.NUMERIC and self.encoding is NumericEncoding.VALUE

    @property
    def needs_stats(self) -> bool:
        """Fed as its value with its mean and std left for the training files to give."""
        return self.as_value and not self.std

    @property
    def privileged(self) -> bool:
        return self.role is Role.PRIVILEGED


FEATURE_DEFAULTS = {
    "column": "",
    "dtype": "string",
    "hash_buckets": 0,
    "vocabulary": [],
    "boundaries": [],
    "max_len": 0,
    "default": 0.0,
    "transform": "none",
    "encoding": "bucket",
    "mean": 0.0,
    "std": 0.0,
    "vocabulary_file": "",
    "min_count": 0,
    "missing_id": False,
    "derive": "none",
}
