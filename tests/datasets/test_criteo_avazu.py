"""Criteo and Avazu as distributed, with the paper's preprocessing (Section 4.1 of Zhu et al. 2020).

End to end: small random files in each format (`criteo_avazu_files`) train
a few steps through the shipped configs (configs/criteo.yaml,
configs/avazu.yaml, with tiny sizes set over them), export, and the export,
reloaded in a fresh process after the run's vocabulary files are gone,
scores raw rows as the trained model does: an unseen category and a rare
one alike (the out-of-vocabulary id), an empty numeric value apart from a 0
(its missing id).  Then the pieces: log-square bins, missing ids, the
min_count cut-off, hours, header-less files and their errors, the config
keys, the run's vocabulary copies and pfd-vocab.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf import run_dir
from pfd_tf.config import FeatureKind, FeatureSpec, NumericTransform
from pfd_tf.config.schema import Derive
from pfd_tf.data import feature_stats, vocab
from pfd_tf.data.pipeline import (DataError, check_eval_split, count_rows, diagnose, make_dataset_fn,
                                  training_rows_per_file)
from pfd_tf.features import FeatureEncoder, lookup_tokens, missing_id, vocabulary_size

from criteo_avazu_files import AVAZU_COLUMNS, CRITEO_COLUMNS, write_avazu, write_criteo

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
CONFIGS = os.path.join(os.path.dirname(HERE), "configs")
TINY = ["distill.mode=baseline", "model.student_tower=[8]", "train.epochs=0", "train.steps=6",
        "train.batch_size=64", "train.log_every=3", "train.eval_batch_size=128", "train.learning_rate=0.01"]


def _shipped(name: str, directory: str, ext: str, more=()) -> config_lib.Config:
    """configs/<name>.yaml over the files in `directory`, with tiny sizes."""
    return config_lib.load(os.path.join(CONFIGS, f"{name}.yaml"), [
        f"data.train_files=[{directory}/train/*.{ext}]", f"data.eval_files=[{directory}/eval/*.{ext}]",
        *TINY, *more])


def _serve_fresh(export_dir: str, rows: list[dict], tmp_path, tag: str) -> np.ndarray:
    """Probabilities of `rows` (column -> raw text; "nan" for a missing number) from a fresh process."""
    path = str(tmp_path / f"{tag}.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = str(tmp_path / f"{tag}.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "serve_export.py"), export_dir, path, out],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def _trained_predictions(model_dir: str) -> np.ndarray:
    """The trained student on the held-out files, through the training input pipeline (the run's config)."""
    from pfd_tf.trainer import build_and_compile

    config = feature_stats.resolve(config_lib.load(os.path.join(model_dir, "config.yaml")), model_dir)
    model = build_and_compile(config, tf.distribute.get_strategy())
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))).expect_partial()
    logits = [model(ids, training=False).numpy() for ids, _ in make_dataset_fn(config, "eval", 128, training=False)(None)]
    return 1 / (1 + np.exp(-np.concatenate(logits)))


def _counts(lines: list[str], column: int, delimiter: str) -> collections.Counter:
    return collections.Counter(line.split(delimiter)[column] for line in lines)


# --------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def criteo_run(tmp_path_factory):
    from pfd_tf.trainer import train

    directory = str(tmp_path_factory.mktemp("criteo"))
    files = write_criteo(directory)
    model_dir = os.path.join(directory, "run")
    metrics = train(_shipped("criteo", directory, "txt"), model_dir, verbose=0)
    return directory, files, model_dir, metrics


def test_criteo_tsv_without_header_trains_and_its_export_serves_raw_rows_in_a_fresh_process(criteo_run, tmp_path):
    directory, files, model_dir, metrics = criteo_run
    assert metrics["train_rows"] == len(files["train/day-0.txt"]) + len(files["train/day-1.txt"])  # no header line lost
    assert metrics["eval_rows"]["rows"] == len(files["eval/day-2.txt"])
    export_dir = os.path.join(model_dir, "export", "student")
    assert {"C1.txt", "I1.txt"} <= set(os.listdir(os.path.join(export_dir, "assets")))

    train_lines = files["train/day-0.txt"] + files["train/day-1.txt"]
    c1 = _counts(train_lines, CRITEO_COLUMNS.index("C1"), "\t")
    rare = next(token for token, n in c1.items() if token and n < 10)
    frequent = next(token for token, _ in c1.most_common() if token)
    base = dict(zip(CRITEO_COLUMNS, files["eval/day-2.txt"][0].split("\t")))
    del base["label"]
    base = {k: (v or "nan") if k.startswith("I") else v for k, v in base.items()}
    variants = [dict(base, C1="zzzzzzzz"), dict(base, C1="yyyyyyyy"), dict(base, C1=rare), dict(base, C1=""),
                dict(base, C1=frequent, I1="nan"), dict(base, C1=frequent, I1="0")]
    held_out = []
    for line in files["eval/day-2.txt"]:
        row = dict(zip(CRITEO_COLUMNS, line.split("\t")))
        del row["label"]
        held_out.append({k: (v or "nan") if k.startswith("I") else v for k, v in row.items()})

    # The export needs none of the run's files: its tables are initialized from its own assets.
    moved = os.path.join(directory, "vocabularies-moved")
    shutil.move(os.path.join(model_dir, run_dir.VOCABULARIES), moved)
    try:
        served = _serve_fresh(export_dir, held_out + variants, tmp_path, "criteo")
    finally:
        shutil.move(moved, os.path.join(model_dir, run_dir.VOCABULARIES))
    rows, (unseen, unseen2, rare_p, empty, missing, zero) = served[: len(held_out)], served[len(held_out):]
    assert unseen == pytest.approx(unseen2, abs=1e-7) and unseen == pytest.approx(rare_p, abs=1e-7)  # one OOV id
    assert abs(empty - unseen) > 1e-7  # an empty C1 has its own id (missing_id), not the OOV one
    assert abs(missing - zero) > 1e-7  # an empty I1 is not a 0
    # Rebuilt from the training pipeline (TSV parsed, empty fields as NaN), the model predicts what the export serves.
    np.testing.assert_allclose(rows, _trained_predictions(model_dir), atol=1e-5)
    assert rows.std() > 0


def test_criteo_ids_out_of_vocabulary_and_missing(criteo_run):
    directory, files, model_dir, _ = criteo_run
    config = feature_stats.resolve(config_lib.load(os.path.join(model_dir, "config.yaml")), model_dir)
    c1, i1 = config.feature("C1"), config.feature("I1")
    vocabulary = open(c1.vocabulary_file).read().split("\n")[:-1]
    encoder = FeatureEncoder([c1, i1])
    ids = encoder({"C1": tf.constant(["zzzzzzzz", vocabulary[0], vocabulary[-1], ""]),
                   "I1": tf.constant([float("nan"), 0.0, 1.0, 3.0])})
    assert ids["C1"].numpy().tolist() == [0, 1, len(vocabulary), len(vocabulary) + 1]
    assert missing_id(c1) == len(vocabulary) + 1 == vocabulary_size(c1) - 1
    i1_tokens = open(i1.vocabulary_file).read().split("\n")[:-1]
    # 0 -> its token's id; 1 and 3 share bin "1" (floor(ln(3)^2) = 1), the missing value the last id.
    assert ids["I1"].numpy().tolist() == [vocabulary_size(i1) - 1, i1_tokens.index("0") + 1,
                                          i1_tokens.index("1") + 1, i1_tokens.index("1") + 1]


@pytest.fixture(scope="module")
def avazu_run(tmp_path_factory):
    from pfd_tf.trainer import train

    directory = str(tmp_path_factory.mktemp("avazu"))
    files = write_avazu(directory)
    model_dir = os.path.join(directory, "run")
    metrics = train(_shipped("avazu", directory, "csv"), model_dir, verbose=0)
    return directory, files, model_dir, metrics


def test_avazu_csv_trains_and_its_export_serves_raw_rows_in_a_fresh_process(avazu_run, tmp_path):
    directory, files, model_dir, metrics = avazu_run
    assert metrics["train_rows"] == len(files["train/part-0.csv"]) + len(files["train/part-1.csv"])
    export_dir = os.path.join(model_dir, "export", "student")
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(AVAZU_COLUMNS) - {"id", "click"}  # hour once

    site = _counts(files["train/part-0.csv"] + files["train/part-1.csv"], AVAZU_COLUMNS.index("site_id"), ",")
    rare = next(token for token, n in site.items() if n < 5)
    held_out = []
    for line in files["eval/part-2.csv"]:
        row = dict(zip(AVAZU_COLUMNS, line.split(",")))
        del row["id"], row["click"]
        held_out.append(row)
    base = held_out[0]
    variants = [dict(base, site_id="unseen-1"), dict(base, site_id="unseen-2"), dict(base, site_id=rare),
                dict(base, hour="14102110"), dict(base, hour="14102210"), dict(base, hour="14102110")]
    moved = os.path.join(directory, "vocabularies-moved")
    shutil.move(os.path.join(model_dir, run_dir.VOCABULARIES), moved)
    try:
        served = _serve_fresh(export_dir, held_out + variants, tmp_path, "avazu")
    finally:
        shutil.move(moved, os.path.join(model_dir, run_dir.VOCABULARIES))
    rows, (unseen, unseen2, rare_p, tuesday, wednesday, tuesday2) = served[: len(held_out)], served[len(held_out):]
    assert unseen == pytest.approx(unseen2, abs=1e-7) and unseen == pytest.approx(rare_p, abs=1e-7)
    assert tuesday == pytest.approx(tuesday2, abs=1e-7) and abs(tuesday - wednesday) > 1e-7  # weekday read
    np.testing.assert_allclose(rows, _trained_predictions(model_dir), atol=1e-5)


def test_a_resumed_run_reads_its_counted_vocabularies_back(avazu_run, monkeypatch):
    from pfd_tf.trainer import train

    directory, _, model_dir, _ = avazu_run
    before = open(os.path.join(model_dir, "vocabularies", "site_id.txt")).read()
    monkeypatch.setattr(vocab, "count", lambda *a: pytest.fail("counted again on a resume"))
    metrics = train(_shipped("avazu", directory, "csv", ["train.steps=9"]), model_dir, verbose=0)
    assert metrics["steps"] == 9
    assert open(os.path.join(model_dir, "vocabularies", "site_id.txt")).read() == before


# --------------------------------------------------------------------------
# The paper's preprocessing, piece by piece
# --------------------------------------------------------------------------
def test_log_square_bins_hand_computed():
    spec = FeatureSpec("I1", FeatureKind.NUMERIC, 2, transform=NumericTransform.LOG_SQUARE, min_count=1)
    assert spec.as_category
    x = [-2, -1, 0, 1, 2, 2.5, 3, 4, 5, 7, 8, 100, 1000, float("nan")]
    # x <= 2: floor(x) (negatives kept); x > 2: floor(ln(x)^2): ln 2.5 = 0.916 -> 0.84 -> 0; ln 3 = 1.099 -> 1.21;
    # ln 4 = 1.386 -> 1.92; ln 5 = 1.609 -> 2.59; ln 7 = 1.946 -> 3.79; ln 8 = 2.079 -> 4.32; ln 100 = 4.605 -> 21.2;
    # ln 1000 = 6.908 -> 47.7; NaN reads as an empty field: the default, 0 -> "0" ("" with missing_id: missing)
    tokens = lookup_tokens(spec, tf.constant(x, tf.float32)).numpy().tolist()
    assert tokens == [b"-2", b"-1", b"0", b"1", b"2", b"0", b"1", b"1", b"2", b"3", b"4", b"21", b"47", b"0"]
    missing = dataclasses.replace(spec, missing_id=True)
    assert lookup_tokens(missing, tf.constant(x, tf.float32)).numpy().tolist() == tokens[:-1] + [b""]


def test_missing_and_zero_get_distinct_ids():
    bucket = FeatureSpec("I1", FeatureKind.NUMERIC, 2, transform=NumericTransform.LOG_SQUARE,
                         boundaries=(0.5, 1.5, 2.5), missing_id=True)
    cat = FeatureSpec("C1", FeatureKind.CATEGORICAL, 2, vocabulary=("a", "b"), missing_id=True)
    hashed = FeatureSpec("C2", FeatureKind.CATEGORICAL, 2, column="C1", hash_buckets=5, missing_id=True)
    ids = FeatureEncoder([bucket, cat, hashed])({"I1": tf.constant([float("nan"), 0.0, 3.0, 100.0]),
                                                        "C1": tf.constant(["", "a", "b", "zz"])})
    assert vocabulary_size(bucket) == 5 and ids["I1"].numpy().tolist() == [4, 0, 1, 3]  # 3 -> 1.21 -> bucket 1
    assert ids["C1"].numpy().tolist() == [3, 1, 2, 0]  # missing 3, OOV 0
    assert ids["C2"].numpy()[0] == 5 and all(0 <= i < 5 for i in ids["C2"].numpy()[1:])
    assert vocabulary_size(cat) == 4 and vocabulary_size(hashed) == 6


def _headerless_world(directory: str, lines: list[str], features=None, **data) -> config_lib.Config:
    os.makedirs(os.path.join(directory, "train"), exist_ok=True)
    for name in ("train/a.tsv", "eval.tsv"):
        with open(os.path.join(directory, name), "w") as f:
            f.write("\n".join(lines) + "\n")
    raw = {"data": {"train_files": ["train/*.tsv"], "eval_files": ["eval.tsv"], "label": "y",
                    "columns": ["y", "n", "c"], "csv_delimiter": "\t", **data},
           "features": features or [{"name": "n", "kind": "numeric", "boundaries": [0.5], "missing_id": True, "dim": 2},
                                    {"name": "c", "kind": "categorical", "min_count": 2, "dim": 2}],
           "model": {"student_tower": [4]}, "distill": {"mode": "baseline"}, "train": {"steps": 2, "batch_size": 4}}
    return config_lib.from_dict(raw, directory)


@pytest.mark.parametrize("numeric, ids", [
    ({"missing_id": True}, [2, 0]),  # NaN -> the missing id 2; 0 -> bucket 0
    ({"default": 7.0}, [1, 0]),  # without: the empty field reads as 7 -> bucket 1
    ({}, [0, 0]),  # ... or as 0, like a real 0
])
def test_empty_numeric_field_parses_as_missing_with_missing_id_else_as_default(tmp_path, numeric, ids):
    config = _headerless_world(str(tmp_path), ["1\t\ta", "0\t0\tb"], features=[
        {"name": "n", "kind": "numeric", "boundaries": [0.5], "dim": 2, **numeric},
        {"name": "c", "kind": "categorical", "vocabulary": ["a"], "dim": 2}])
    found, _ = next(iter(make_dataset_fn(config, "eval", 2, training=False)(None)))
    assert found["n"].numpy().tolist() == ids
    # The two-tower export's raw rows (what its checks feed serving_default) read an empty field alike.
    from pfd_tf.export_two_tower import raw_columns

    served = FeatureEncoder(config.features)(raw_columns(config.features, [{"n": "", "c": "a"}, {"n": "0", "c": "b"}],
                                                         "|"))
    assert served["n"].numpy().tolist() == ids


def test_min_count_cut_off_counts(tmp_path):
    counts = {"a": 12, "b": 10, "e": 10, "c": 9, "d": 1}
    lines = [f"{i % 2}\t1\t{token}" for token, n in counts.items() for i in range(n)] + ["1\t1\t"] * 30
    config = _headerless_world(str(tmp_path), lines, features=[
        {"name": "c", "kind": "categorical", "min_count": 10, "dim": 2},
        {"name": "n", "kind": "numeric", "boundaries": [0.5], "dim": 2}])
    (found,) = vocab.count(config, [config.feature("c")]).values()
    # Seen >= 10 times, most frequent first, ties by bytes; the empty value (30 times) is never a token.
    assert found.tokens == (b"a", b"b", b"e") and found.distinct == 5 and found.rows == len(lines)
    model_dir = str(tmp_path / "run")
    resolved = vocab.install(config, model_dir, vocab.for_run(config, model_dir, resume=False))
    assert open(os.path.join(model_dir, "vocabularies", "c.txt")).read() == "a\nb\ne\n"
    assert vocabulary_size(resolved.feature("c")) == 4  # OOV + 3
    assert json.load(open(os.path.join(model_dir, "vocabularies", "vocabularies.json")))["features"]["c"]["min_count"] == 10


def test_hour_of_day_and_weekday_hand_checked():
    hour = FeatureSpec("hour_of_day", FeatureKind.CATEGORICAL, 2, column="hour", hash_buckets=24,
                       derive=Derive.HOUR_OF_DAY)
    weekday = dataclasses.replace(hour, name="weekday", derive=Derive.WEEKDAY)
    # 14102100: 2014-10-21 00h, a Tuesday (1, Monday is 0); 14102623: 2014-10-26 23h, a Sunday.
    text = tf.constant(["14102100", "14102623", ""])
    assert lookup_tokens(hour, text).numpy().tolist() == [b"0", b"23", b""]
    assert lookup_tokens(weekday, text).numpy().tolist() == [b"1", b"6", b""]
    days = [datetime.date(2000, 1, 1) + datetime.timedelta(days=d) for d in range(0, 36500, 37)]
    days += [datetime.date(2016, 2, 29), datetime.date(2000, 2, 29), datetime.date(2014, 10, 30)]
    text = tf.constant([f"{d:%y%m%d}07" for d in days])
    assert lookup_tokens(weekday, text).numpy().tolist() == [str(d.weekday()).encode() for d in days]


def test_a_bad_hour_is_named_with_file_and_line(tmp_path):
    features = [{"name": "h", "column": "c", "derive": "weekday", "kind": "categorical",
                 "vocabulary": ["0", "1", "2", "3", "4", "5", "6"], "dim": 2},
                {"name": "n", "kind": "numeric", "boundaries": [0.5], "dim": 2}]
    config = _headerless_world(str(tmp_path), ["1\t1\t14102100", "0\t1\t14102101", "1\t1\t14132101"], features)
    with pytest.raises(DataError, match=r"eval\.tsv: line 3: column 'c': '14132101' is not a YYMMDDHH hour"):
        check_eval_split(config)


# --------------------------------------------------------------------------
# Header-less files
# --------------------------------------------------------------------------
def test_headerless_rows_are_all_counted(tmp_path):
    config = _headerless_world(str(tmp_path), ["1\t1\ta", "0\t2\tb", "1\t\tb"])
    assert training_rows_per_file(config) == [3]
    assert count_rows([str(tmp_path / "eval.tsv")], config.data.format, header=False) == 3
    assert check_eval_split(config)["rows"] == 3


@pytest.mark.parametrize("line, why", [
    ("1\tx\ta", r"line 2: column 'n': 'x' is not a number"),
    ("2\t1\ta", r"line 2: label column 'y': 2 is not 0 or 1"),
    ("1\t1", r"line 2: expected 3 fields, found 2"),
])
def test_headerless_errors_name_file_and_line(tmp_path, line, why):
    config = _headerless_world(str(tmp_path), ["0\t1\ta", line, "1\t1\tb"])
    with pytest.raises(DataError, match=r"eval\.tsv: " + why):
        check_eval_split(config)
    assert diagnose(config, [str(tmp_path / "train" / "a.tsv")]).endswith(why.replace("\\", ""))


def test_headerless_first_line_checked_up_front(tmp_path):
    with pytest.raises(DataError, match=r"a\.tsv: line 1: a header line \(it holds 'y'.*remove data\.columns"):
        training_rows_per_file(_headerless_world(str(tmp_path), ["y\tn\tc", "0\t1\ta"]))
    with pytest.raises(DataError, match=r"a\.tsv: line 1: 1 fields, but data\.columns names 3 \(is data\.csv_delimiter"):
        training_rows_per_file(_headerless_world(str(tmp_path), ["0,1,a", "1,1,a"]))


@pytest.mark.parametrize("ids, before_any_write", [
    ({"min_count": 2}, True),  # the vocabulary pass parses every training row as the run starts
    ({"hash_buckets": 4}, False),  # training stops on the row, `diagnose` names it
])
def test_headerless_bad_training_row_is_named_with_its_line(tmp_path, ids, before_any_write):
    from pfd_tf.trainer import train

    lines = [f"{i % 2}\t{i}\t{'ab'[i % 2]}" for i in range(40)]
    lines[17] = "1\tnope\ta"
    config = _headerless_world(str(tmp_path), lines, features=[
        {"name": "n", "kind": "numeric", "boundaries": [0.5], "dim": 2},
        {"name": "c", "kind": "categorical", "dim": 2, **ids}])
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=12))  # every row read
    with open(tmp_path / "eval.tsv", "w") as f:  # a clean held-out file, so that the run starts
        f.write("0\t1\ta\n1\t2\tb\n")
    with pytest.raises(DataError, match=r"a\.tsv: line 18: column 'n': 'nope' is not a number"):
        train(config, str(tmp_path / "run"), verbose=0)
    assert os.path.exists(tmp_path / "run" / "config.yaml") != before_any_write


# --------------------------------------------------------------------------
# Config keys
# --------------------------------------------------------------------------
def _raw(tmp_path) -> dict:
    return _headerless_world(str(tmp_path), ["0\t1\ta"]).to_dict()


@pytest.mark.parametrize("change, message", [
    (lambda r: r["data"].update(columns=["n", "c"]), r"data\.columns: the label column 'y' \(data\.label\) is not among them"),
    (lambda r: r["data"].update(columns=["y", "n"]), r"data\.columns: has no column 'c', which features\[1\] \('c'\) reads"),
    (lambda r: r["data"].update(columns=["y", "n", "c", "n"]), r"data\.columns\[3\]: duplicate column 'n' \(also data\.columns\[1\]\)"),
    (lambda r: r["data"].update(format="tfrecord"), r"data\.columns: names the columns of header-less CSV files"),
    (lambda r: r["data"].update(csv_delimiter="\\t"), r"data\.csv_delimiter: must be one character.*double quotes"),
    (lambda r: r["data"].update(vocabulary_dir="v", columns=["y", "n", "c"]) or r["features"][1].update(min_count=0, hash_buckets=3),
     r"data\.vocabulary_dir: no feature has min_count"),
    (lambda r: r["features"][1].update(hash_buckets=3), r"features\[1\]\.min_count: a categorical feature needs exactly one of "
     r"hash_buckets, vocabulary, vocabulary_file or min_count \(it has hash_buckets and min_count\)"),
    (lambda r: r["features"][1].update(min_count=-1), r"features\[1\]\.min_count: must be positive"),
    (lambda r: r["features"][0].update(min_count=3), r"features\[0\]\.min_count: not used by a numeric feature with boundaries"),
    (lambda r: r["features"][0].update(boundaries=[], min_count=3, hash_buckets=4), r"features\[0\]\.min_count: a numeric "
     r"feature with integer bins needs exactly one of .* \(it has hash_buckets and min_count\)"),
    (lambda r: r["features"][0].update(boundaries=[]), r"features\[0\]\.boundaries: a numeric feature needs boundaries"),
    (lambda r: r["features"][0].update(boundaries=[], encoding="value"), r"features\[0\]\.missing_id: not used with encoding: value"),
    (lambda r: r["features"][0].update(default=1.0), r"features\[0\]\.default: not used with missing_id: true"),
    (lambda r: r["features"][1].update(dtype="int64", missing_id=True), r"features\[1\]\.missing_id: only string categorical"),
    (lambda r: r["features"][0].update(derive="weekday"), r"features\[0\]\.derive: only a categorical feature with dtype: string"),
    (lambda r: r["features"].append({"name": "n2", "column": "n", "kind": "numeric", "boundaries": [1.0], "dim": 2}),
     r"features\[2\]\.missing_id: 'n2' reads column 'n', whose empty fields features\[0\] \('n'\) reads otherwise"),
    (lambda r: r["features"][1].update(name="c/d", column="c"), r"features\[1\]\.name: 'c/d' cannot name the run's copy"),
])
def test_bad_keys_are_config_errors_naming_the_key(tmp_path, change, message):
    raw = _raw(tmp_path)
    change(raw)
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.from_dict(raw, str(tmp_path))


def test_new_keys_round_trip_through_yaml(tmp_path):
    config = config_lib.load(os.path.join(CONFIGS, "avazu.yaml"))
    again = config_lib.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())), config.base_dir)
    assert again == config
    assert {"derive", "column"} <= set(config.to_dict()["features"][1]) and "missing_id" not in config.to_dict()["features"][1]


# --------------------------------------------------------------------------
# Vocabulary files, the run's copies, pfd-vocab
# --------------------------------------------------------------------------
def test_vocabulary_file_is_copied_and_a_changed_one_refuses_the_resume(tmp_path):
    (tmp_path / "c.txt").write_text("b\na\n")
    raw = _raw(tmp_path)
    raw["features"][1].update(min_count=0, vocabulary_file="c.txt")
    config = config_lib.from_dict(raw, str(tmp_path))
    model_dir = str(tmp_path / "run")
    found = vocab.for_run(config, model_dir, resume=False)
    assert found["c"].tokens == (b"b", b"a")
    resolved = vocab.install(config, model_dir, found)
    assert resolved.feature("c").vocabulary_file == os.path.join(model_dir, "vocabularies", "c.txt")
    ids = FeatureEncoder(resolved.features)({"n": tf.constant([1.0]), "c": tf.constant(["a"])})
    assert ids["c"].numpy().tolist() == [2]
    assert vocab.for_run(config, model_dir, resume=True)["c"].tokens == (b"b", b"a")
    (tmp_path / "c.txt").write_text("a\nb\n")
    with pytest.raises(run_dir.RunDirError, match=r"features\[1\]\.vocabulary_file: .*c\.txt differs from the vocabulary"):
        vocab.for_run(config, model_dir, resume=True)
    assert run_dir.VOCABULARIES in run_dir.RUN_FILES
    # The saved config names the file absolutely: loaded from the model_dir it still reads the same file.
    config_lib.save(config, str(tmp_path / "run" / "config.yaml"))
    saved = config_lib.load(str(tmp_path / "run" / "config.yaml"))
    assert saved.resolve_path(saved.feature("c").vocabulary_file) == str(tmp_path / "c.txt")
    assert run_dir.identity(saved) == run_dir.identity(config)


@pytest.mark.parametrize("body, why", [
    ("a\n\nb\n", r"c\.txt: line 2: an empty line"),
    ("a\nb\na\n", r"c\.txt: line 3: duplicate token 'a' \(also line 1\)"),
    ("a\r\nb\r\n", r"c\.txt: line 1: a Windows line break"),
    (None, r"features\[1\]\.vocabulary_file: no such vocabulary file"),
])
def test_bad_vocabulary_files_name_key_and_line(tmp_path, body, why):
    if body is not None:
        (tmp_path / "c.txt").write_bytes(body.encode())
    raw = _raw(tmp_path)
    raw["features"][1].update(min_count=0, vocabulary_file="c.txt")
    with pytest.raises(config_lib.ConfigError, match=why):
        vocab.for_run(config_lib.from_dict(raw, str(tmp_path)), str(tmp_path / "run"), resume=False)


def test_pfd_vocab_writes_what_a_run_then_reads_from_data_vocabulary_dir(tmp_path):
    from pfd_tf.data.vocab import write_vocabularies

    lines = [f"{i % 2}\t1\t{'abc'[i % 3] if i < 30 else 'z'}" for i in range(31)]
    path = str(tmp_path / "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(_headerless_world(str(tmp_path), lines).to_dict(), f)
    out = str(tmp_path / "vocab")
    written = write_vocabularies(path, out)
    assert written["c"].tokens == (b"a", b"b", b"c")  # z is seen once, min_count 2
    assert open(os.path.join(out, "c.txt")).read() == "a\nb\nc\n"
    cli_out = str(tmp_path / "vocab_cli")  # the command itself, as a user runs it
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.vocab", "--config", path, "--out", cli_out],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert open(os.path.join(cli_out, "c.txt")).read() == "a\nb\nc\n" and "data.vocabulary_dir" in proc.stdout
    with pytest.raises(config_lib.ConfigError, match=r"--out .*c\.txt exists .*--overwrite"):
        write_vocabularies(path, out)
    config = config_lib.load(path, [f"data.vocabulary_dir={out}"])
    found = vocab.for_run(config, str(tmp_path / "run"), resume=False)
    assert found["c"].tokens == (b"a", b"b", b"c") and found["c"].source == os.path.join(out, "c.txt")
    with pytest.raises(config_lib.ConfigError, match=r"features\[1\]\.min_count: 3, but .*c\.txt was counted with min_count 2"):
        vocab.for_run(config_lib.load(path, [f"data.vocabulary_dir={out}", "features.c.min_count=3"]),
                      str(tmp_path / "run"), resume=False)
    with pytest.raises(config_lib.ConfigError, match=r"data\.vocabulary_dir: no vocabulary for feature 'c'"):
        vocab.for_run(config_lib.load(path, [f"data.vocabulary_dir={tmp_path}"]), str(tmp_path / "run"), resume=False)


def test_pfd_export_resolves_the_runs_vocabularies(criteo_run):
    _, _, model_dir, _ = criteo_run
    config = config_lib.load(os.path.join(model_dir, "config.yaml"))
    assert feature_stats.resolve(config, model_dir).feature("C1").vocabulary_file == os.path.join(
        model_dir, "vocabularies", "C1.txt")
    with pytest.raises(config_lib.ConfigError, match=r"I1\.txt: missing; feature 'I1' needs the vocabulary"):
        vocab.resolve(config, os.path.join(model_dir, "elsewhere"))
