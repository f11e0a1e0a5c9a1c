"""Serving a two-tower student the way a coarse ranker is served (Section 3, Figure 4).

Item vectors are computed offline, once per item; a request runs the user
tower once and scores every candidate by an inner product.  Exports, beside
`export/student` (which scores given user-item pairs):

- `export/user_tower/`: raw user (and context) features -> `user_vector`;
- `export/item_tower/`: raw item features -> `item_vector`;
- `export/item_index.npz`: `ids` and `vectors` (scale already applied) of every
  item of the item file;
- `export/retrieval/`: raw user features -> the top-k `item_ids` and their
  `scores` (= scale * <user, item>), by tensorflow-recommenders' BruteForce
  layer over the index.

None takes a privileged input: the student's towers read regular features only.
"""
from __future__ import annotations

import csv
import os
from typing import Mapping, Sequence

import numpy as np

from pfd_tf._keras import keras, tf
from pfd_tf.config import Config, FeatureKind, FeatureSpec
from pfd_tf.data.parse import check_unique_columns
from pfd_tf.data.pipeline import DataError
from pfd_tf.export import check_student_inputs, restore_student
from pfd_tf.features import FeatureEncoder, serving_signature
from pfd_tf.models.embedding import concat_inputs
from pfd_tf.models.two_tower import TwoTowerRanker
from pfd_tf.names import SERVED


def side_features(config: Config, student: TwoTowerRanker) -> tuple[list[FeatureSpec], list[FeatureSpec]]:
    """(user-tower features, item-tower features) of the student, as specs."""
    names = lambda layers: {n for layer in layers for n in layer.feature_names}  # noqa: E731
    user, item = names(student.user_inputs), names(student.item_inputs)
    return ([f for f in config.student_features if f.name in user],
            [f for f in config.student_features if f.name in item])


class TowerModel(keras.Model):
    """Raw features of one side -> that side's unit vectors (also the BruteForce query model).

    Holds only that side's input layers and tower, so a tower export carries
    none of the other side's variables.
    """

    def __init__(self, features: Sequence[FeatureSpec], inputs, tower, **kwargs):
        super().__init__(**kwargs)
        self.encoder = FeatureEncoder(features, name=f"{self.name}_encoder")
        self.side_inputs = list(inputs)
        self.tower = tower

    def call(self, raw: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return self.tower(concat_inputs(self.side_inputs, self.encoder(raw), training=False), training=False)

    def get_config(self):
        """Only exported and served (tf.saved_model.load), never rebuilt by from_config: Keras' default
        get_config would warn of non-serializable objects at each save."""
        return {"name": self.name}


def read_items(config: Config, features: Sequence[FeatureSpec], paths: Sequence[str], id_column: str):
    """(ids, raw feature tensors) of the distinct items in CSV `paths`, first occurrence wins."""
    columns = {f.source for f in features} | {id_column}
    seen: dict[str, dict] = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter=config.data.csv_delimiter)
            check_unique_columns(path, reader.fieldnames or (), sorted(columns))
            missing = sorted(columns - set(reader.fieldnames or ()))
            if missing:
                raise DataError(f"{path}: line 1: missing item column {missing[0]!r}")
            for row in reader:
                seen.setdefault(row[id_column], row)
    if not seen:
        raise DataError(f"{', '.join(paths)}: no item rows")
    rows = list(seen.values())
    return np.array(list(seen), dtype=object), raw_columns(features, rows, config.data.sequence_delimiter)


def raw_columns(features: Sequence[FeatureSpec], rows: Sequence[Mapping[str, str]], delimiter: str) -> dict:
    """CSV rows as the raw tensors `serving_default` takes, keyed by column (see `pfd_tf.features`)."""
    out = {}
    for spec in features:
        values = [row[spec.source] for row in rows]
        if spec.kind is FeatureKind.NUMERIC:
            empty = float("nan") if spec.missing_id else spec.default  # as the training parser reads it
            out[spec.source] = tf.constant([float(v) if v else empty for v in values], tf.float32)
            continue
        if spec.kind is FeatureKind.SEQUENCE:
            pad = "-1" if spec.dtype == "int64" else ""
            parts = [[p for p in v.split(delimiter) if p][: spec.max_len] for v in values]
            values = [p + [pad] * (spec.max_len - len(p)) for p in parts]
        if spec.dtype == "int64":
            out[spec.source] = tf.constant(np.array(values, dtype=np.int64))
        else:
            out[spec.source] = tf.constant(np.array(values, dtype=object), tf.string)
    return out


def _save(module: tf.Module, function, signature: dict, path: str) -> None:
    serve = tf.function(function, input_signature=[signature])
    tf.saved_model.save(module, path, signatures={"serving_default": serve.get_concrete_function()})


def export_two_tower(config: Config, checkpoint_path: str, export_root: str, item_files: Sequence[str],
                     id_column: str = "item_id", k: int = 100, batch_size: int = 4096,
                     name: str = SERVED) -> dict[str, str]:
    """Writes user_tower, item_tower, item_index.npz and retrieval of student `name` under `export_root`."""
    check_student_inputs(config)
    student = restore_student(config, checkpoint_path, name)
    if not isinstance(student, TwoTowerRanker):
        raise ValueError("export_two_tower needs a two-tower student (model.architecture: two_tower, or a "
                         "student of model: two_tower)")
    user_features, item_features = side_features(config, student)
    users = TowerModel(user_features, student.user_inputs, student.user_tower, name="user_tower")
    items = TowerModel(item_features, student.item_inputs, student.item_tower, name="item_tower")
    user_signature = serving_signature(user_features)
    item_signature = serving_signature(item_features)
    paths = {name: os.path.join(export_root, name) for name in ("user_tower", "item_tower", "retrieval")}
    _save(users, lambda raw: {"user_vector": users(raw)}, user_signature, paths["user_tower"])
    _save(items, lambda raw: {"item_vector": items(raw)}, item_signature, paths["item_tower"])

    ids, raw = read_items(config, item_features, item_files, id_column)
    vectors = np.concatenate([
        items({n: t[i : i + batch_size] for n, t in raw.items()}).numpy() for i in range(0, len(ids), batch_size)
    ]) * student.scale  # folded into the index: scores are scale * <u, i>
    paths["item_index"] = os.path.join(export_root, "item_index.npz")
    np.savez(paths["item_index"], ids=ids.astype(str), vectors=vectors)

    import tensorflow_recommenders as tfrs  # noqa: E402  (heavy; only the two-tower export needs it)

    class Retrieval(tfrs.layers.factorized_top_k.BruteForce):
        def get_config(self):  # a keras.Model without one warns at each save; only served, never from_config'd
            return {"name": self.name, "k": self._k}

    index = Retrieval(users, k=min(k, len(ids)), name="retrieval")
    index.index(tf.constant(vectors), tf.constant(ids.astype(str)))
    _save(index, lambda raw: dict(zip(("scores", "item_ids"), index(raw))), user_signature, paths["retrieval"])
    return paths


def export_all(config: Config, checkpoint_path: str, export_root: str,
               students: Sequence[str] | None = None) -> dict[str, str]:
    """Every serving artifact of a run: the served student in `export_root` (`student/`, plus the two-tower
    exports for a two-tower student), and each other student `<name>` in `export_root/<name>/`, laid out the
    same way (`<name>/student/`, and for a two-tower student its towers, index and retrieval model).

    `students`: the names to export (default: all); keys of the result are `student`, ..., `<name>/student`."""
    names = config.student_names if students is None else tuple(students)
    paths = {}
    for name in names:
        root = export_root if name == SERVED else os.path.join(export_root, name)
        prefix = "" if name == SERVED else f"{name}/"
        paths.update({prefix + key: path for key, path in _export_one(config, checkpoint_path, root, name).items()})
    return paths


def _export_one(config: Config, checkpoint_path: str, export_root: str, name: str) -> dict[str, str]:
    from pfd_tf.config import Architecture, ZooModel
    from pfd_tf.data.pipeline import resolve_files
    from pfd_tf.export import export_student

    paths = {"student": export_student(config, checkpoint_path, os.path.join(export_root, "student"), name)}
    network = config.students[config.student_names.index(name)]
    two_tower = config.model.architecture is Architecture.TWO_TOWER if name == SERVED \
        else network.model is ZooModel.TWO_TOWER
    if two_tower:
        items = resolve_files(config, "item_files" if config.data.item_files else "train_files")
        paths.update(export_two_tower(config, checkpoint_path, export_root, items,
                                      config.data.item_id_column, config.model.retrieval_k, name=name))
    return paths
