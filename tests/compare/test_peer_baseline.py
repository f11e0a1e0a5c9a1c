"""benchmarks/peer_baseline.py: DeepCTR's DNN reads the ids pfd_tf's student reads, and both get scored.

DeepCTR is the optional `peer` extra: the tests that need it skip without it.
"""
from __future__ import annotations

import csv
import importlib
import json
import math
import os
import sys

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow, so before DeepCTR)
from pfd_tf._keras import tf
from pfd_tf.config import FeatureKind
from pfd_tf.data.files import resolve_files
from pfd_tf.datasets.scenarios import SCENARIOS
from pfd_tf.features import FeatureEncoder

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "benchmarks")
ROWS = 3000


@pytest.fixture(scope="module")
def bench():
    """The benchmark script as a module (it imports `common` from its own folder)."""
    sys.path.insert(0, BENCHMARKS)
    try:
        return importlib.import_module("peer_baseline")
    finally:
        sys.path.remove(BENCHMARKS)


def encoded_from_csv(config, split: str) -> tuple[dict, np.ndarray]:
    """Every row of the split's files, read with Python's csv module, file after file, and encoded by
    pfd_tf's FeatureEncoder over the student's features: the ids the student sees, by another path."""
    lines = []
    for path in resolve_files(config, f"{split}_files"):
        with open(path, newline="", encoding="utf-8") as f:
            lines += list(csv.DictReader(f))
    raw = {}
    for spec in config.student_features:
        texts = [line[spec.source] for line in lines]
        if spec.kind is FeatureKind.NUMERIC:
            raw[spec.source] = tf.constant([float(t) if t else spec.default for t in texts], tf.float32)
        elif spec.kind is FeatureKind.SEQUENCE:
            ids = [[i for i in t.split(config.data.sequence_delimiter) if i][: spec.max_len] for t in texts]
            raw[spec.source] = tf.constant([i + [""] * (spec.max_len - len(i)) for i in ids])
        else:
            raw[spec.source] = tf.constant(texts)
    encoded = FeatureEncoder(config.student_features)(raw)
    labels = np.array([float(line[config.data.label]) for line in lines], np.float32)
    return {name: value.numpy().reshape(len(lines), -1) for name, value in encoded.items()}, labels


def row_table(ids: dict, labels: np.ndarray) -> np.ndarray:
    """One row per example: every feature's ids (by feature name) and the label, as int64."""
    return np.concatenate([ids[name].astype(np.int64) for name in sorted(ids)] + [labels[:, None].astype(np.int64)], 1)


def sorted_rows(table: np.ndarray) -> np.ndarray:
    return table[np.lexsort(table.T[::-1])]


@pytest.mark.parametrize("scenario", ["cvr", "ctr"])
def test_deepctr_gets_the_students_ids_and_nothing_privileged(bench, tmp_path, scenario):
    pytest.importorskip("deepctr")
    config = bench.peer_config(SCENARIOS[scenario](str(tmp_path), seed=0, rows=ROWS), [])
    student = {spec.name for spec in config.student_features}
    assert config.privileged_features and student.isdisjoint(spec.name for spec in config.privileged_features)
    peer = bench.import_deepctr()
    model, _, _ = bench.peer_dnn(peer, bench.peer_columns(peer, config), config.model.student_tower)
    for split in ("train", "eval"):
        inputs, labels = bench.peer_inputs(config, split)
        assert set(inputs) == student == set(model.input_names)
        expected = row_table(*encoded_from_csv(config, split))
        fed = row_table(inputs, labels)
        assert fed.shape == expected.shape, split
        if len(resolve_files(config, f"{split}_files")) == 1:  # one file: read in its order
            np.testing.assert_array_equal(fed, expected, err_msg=split)
        else:  # interleaved files: the same rows, ids and label together
            np.testing.assert_array_equal(sorted_rows(fed), sorted_rows(expected), err_msg=split)
        assert len(np.unique(inputs["item_id"])) > 1  # real ids, not a column of padding
    probabilities = model.predict({k: v[:8] for k, v in inputs.items()}, verbose=0)
    assert probabilities.shape == (8, 1) and ((probabilities > 0) & (probabilities < 1)).all()


def test_tiny_run_scores_both_sides(bench, tmp_path, capsys):
    pytest.importorskip("deepctr")
    out = tmp_path / "out"
    bench.main(["--out", str(out), "--scenarios", "cvr", "--seeds", "0", "--tune-seed", "1", "--rows", str(ROWS),
                "--peer-epochs", "1", "--set", "train.epochs=1"])
    with open(out / "peer_baseline.json") as f:
        report = json.load(f)
    assert report["chosen"] == {"cvr": {"dnn": {"deepctr_epochs": 1, "pfd_tf": []}}}
    assert [r["epochs"] for r in report["tuning"]] == [1]
    sides = {r["side"]: r for r in report["results"]}
    assert set(sides) == {"pfd_tf", "deepctr"} and len(report["results"]) == 2
    for row in sides.values():
        assert 0 < row["auc"] < 1 and math.isfinite(row["auc"]), row
        assert 0 < row["logloss"] and math.isfinite(row["logloss"]), row
        assert row["eval_rows"] == sides["pfd_tf"]["eval_rows"] > 0  # the same held-out rows
        assert row["train_rows"] == sides["pfd_tf"]["train_rows"]
    printed = capsys.readouterr().out
    assert "| pfd_tf baseline student (mlp) | " in printed and "| DeepCTR DNN (1 epochs) | " in printed
    assert "pfd_tf - DeepCTR, AUC per seed: " in printed


def test_zoo_models_are_compared_with_deepctrs_own_and_a_second_start_measures_nothing_again(bench, tmp_path,
                                                                                           capsys):
    """`--models`: pfd_tf trains the zoo model as its student, DeepCTR its model of that name with the same sizes;
    pfd_tf's rate is chosen on the validation world from `--rates`.  Every result is kept in runs.jsonl, and the
    same command started again (as after an interruption) trains nothing and prints the same tables."""
    pytest.importorskip("deepctr")
    out = tmp_path / "out"
    argv = ["--out", str(out), "--scenarios", "ensemble", "--seeds", "0", "--tune-seed", "1", "--rows", "4000",
            "--models", "xdeepfm", "--peer-epochs", "1", "--rates", "0.1,adam:0.01", "--set", "train.epochs=1",
            "--set", "student.cin_layers=[4,2]", "--set", "model.student_tower=[8]"]
    bench.main(argv)
    first = capsys.readouterr().out
    with open(out / "peer_baseline.json") as f:
        report = json.load(f)
    assert set(report["chosen"]["ensemble"]) == {"xdeepfm"}
    for model in ("xdeepfm",):
        grid = [["train.learning_rate=0.1"], ["train.optimizer=adam", "train.learning_rate=0.01"]]
        assert report["chosen"]["ensemble"][model]["pfd_tf"] in grid
        tuned = [r for r in report["tuning"] if r["zoo"] == model and r["side"] == "pfd_tf"]
        chosen = report["chosen"]["ensemble"][model]["pfd_tf"]
        assert [(r["overrides"], r["seed"]) for r in tuned] == [(grid[0], 1), (grid[1], 1), (chosen, 2)]  # confirmed
        sides = {r["side"]: r for r in report["results"] if r["zoo"] == model}
        assert set(sides) == {"pfd_tf", "deepctr"}
        assert all(0 < r["auc"] < 1 for r in sides.values())
        assert sides["pfd_tf"]["eval_rows"] == sides["deepctr"]["eval_rows"] > 0
    assert "| DeepCTR xDeepFM (1 epochs) | " in first and "| xDeepFM: difference | " in first
    with open(out / "runs.jsonl") as f:
        measured = f.read()
    assert len(measured.splitlines()) == 2 + 1 + 1 + 2  # 2 tuning runs, the winner's second start, DeepCTR's
    # tuning, one world's two runs

    bench.main(argv)
    with open(out / "runs.jsonl") as f:
        assert f.read() == measured
    again = capsys.readouterr().out
    table = first[first.index("Parity"):first.index("wrote ")]
    assert table == again[again.index("Parity"):again.index("wrote ")]


def test_each_deepctr_counterpart_reads_the_students_ids_with_the_configs_sizes(bench, tmp_path):
    pytest.importorskip("deepctr")
    import peer_zoo

    path = SCENARIOS["ensemble"](str(tmp_path), seed=0, rows=400)
    peer = bench.import_deepctr()
    expected = {"dcn": "CrossNet", "xdeepfm": "CIN", "autoint": "InteractingLayer", "fibinet": "SENETLayer",
                "deepfm": "FM", "wide_deep": "Linear"}
    for model in peer_zoo.MODELS:
        config = bench.peer_config(path, [f"student.model={model}", "student.cin_layers=[4,2]",
                                          "student.cross_layers=1", "student.attention_layers=1",
                                          "student.attention_dim=3", "model.student_tower=[8]"])
        built = peer_zoo.counterpart(model, bench.peer_columns(peer, config), config.student, (8,))
        assert set(built.input_names) == {spec.name for spec in config.student_features}, model
        logits, prediction = peer_zoo.logit_model(built)
        inputs, _ = bench.peer_inputs(config, "eval")
        batch = {k: v[:4] for k, v in inputs.items()}
        np.testing.assert_allclose(built.predict(batch, verbose=0).reshape(-1),
                                   1 / (1 + np.exp(-(logits.predict(batch, verbose=0).reshape(-1)
                                                     + prediction.global_bias.numpy()[0]))), rtol=1e-5)
        layers = {type(layer).__name__: layer for layer in built.layers}
        assert expected[model] in layers and "DNN" in layers, (model, sorted(layers))
        assert ("Linear" in layers) == (model not in ("dcn", "autoint")), model  # pfd_tf's first-order parts
        if model == "fibinet":
            assert layers["BilinearInteraction"].bilinear_type == "interaction"  # pfd_tf's field_interaction
    config = bench.peer_config(path, ["student.model=dcn", "student.cross_layers=2"])
    built = peer_zoo.counterpart("dcn", bench.peer_columns(peer, config), config.student, (8,))
    cross = next(layer for layer in built.layers if type(layer).__name__ == "CrossNet")
    assert cross.parameterization == "matrix" and cross.layer_num == 2  # pfd_tf's full-rank cross


def test_refuses_to_pick_epochs_on_an_evaluation_world(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path), "--seeds", "0,1", "--tune-seed", "1"])
    assert "--tune-seed 1 is one of --seeds" in capsys.readouterr().err


def test_without_deepctr_it_says_what_to_install(bench, monkeypatch):
    monkeypatch.setitem(sys.modules, "deepctr", None)  # `import deepctr` now raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        bench.import_deepctr()
    assert 'pip install -e ".[peer]"' in str(exit_info.value)


def test_an_evaluation_world_that_diverges_is_scored_as_the_constant_predictor_and_the_comparison_goes_on(
        bench, tmp_path, capsys):
    """The point the validation world chose can blow up on an evaluation world (DeepFM at Adagrad 1.6 did):
    that world's row is AUC 0.5, marked, and the tables still print; on the validation world the error
    goes to the grid, which counts the point as lost."""
    from conftest import write_tiny_world

    from pfd_tf.callbacks import NonFiniteLossError

    config = write_tiny_world(str(tmp_path / "w"))
    blow_up = ["train.optimizer=adam", "train.learning_rate=1000000", "train.steps=20", "train.log_every=5"]
    with pytest.raises(NonFiniteLossError):
        bench.train_pfd_tf(config, "cvr", 0, blow_up, str(tmp_path / "runs_a"), "deepfm")
    rows = bench.train_pfd_tf(config, "cvr", 0, blow_up, str(tmp_path / "runs_b"), "deepfm", scored_if_diverged=True)
    assert [(r["auc"], r["diverged"], r["side"]) for r in rows] == [(0.5, True, "pfd_tf")]

    sys.path.insert(0, BENCHMARKS)
    try:
        tables = importlib.import_module("peer_tables")
    finally:
        sys.path.remove(BENCHMARKS)
    peer = {"scenario": "cvr", "seed": 0, "model": "DeepCTR DeepFM (1 epochs)", "zoo": "deepfm",
            "side": "deepctr", "auc": 0.68, "logloss": 0.39}
    scored = {**rows[0], "seed": 1, "auc": 0.66, "logloss": 0.40, "diverged": False}
    rows += [scored, {**peer, "seed": 1}]
    args = type("Args", (), {"rows": 1200, "seeds": "0,1"})()
    tables.print_tables("cvr", [0, 1], rows + [peer], args)
    tables.print_parity([0, 1], rows + [peer], ["deepfm"], args)
    out = capsys.readouterr().out
    assert "| pfd_tf deepfm | 0.5000† | 0.6600 | 0.5800 ± 0.1131 |" in out
    assert "| pfd_tf deepfm | -† | 0.4000 | 0.4000 |" in out  # log loss: none for the diverged world
    assert "DeepFM: difference | -0.1800 | -0.0200 | **-0.1000** |" in out
    assert out.count("† diverged") == 2
    json.dumps(rows, allow_nan=False)  # peer_baseline.json stays valid JSON


def test_the_best_point_is_chosen_only_if_its_second_start_does_not_diverge(bench, tmp_path, monkeypatch):
    """DeepFM at Adagrad 1.6 for 2 epochs was the best point on the validation world and blew up on every
    evaluation world and on the validation world's second start.  The grid's winner is trained again from
    `train.seed` + 1 on the same world; one that diverges there is passed over for the next best, confirmed
    the same way.  (Which start diverges is set here; the divergence itself is test_an_evaluation_world_...)"""
    from pfd_tf.callbacks import NonFiniteLossError

    sys.path.insert(0, BENCHMARKS)
    try:
        pfd = importlib.import_module("peer_pfd")
        tables = importlib.import_module("peer_tables")
    finally:
        sys.path.remove(BENCHMARKS)
    first_start = {"fast": 0.69, "steady": 0.68, "slow": 0.66}
    diverges = {("fast", 101), ("steady", 100)}  # `steady` blows up on its first start: it lost already
    trained = []

    def train(config_path, scenario, seed, overrides, runs_dir, model_kind="dnn", scored_if_diverged=False):
        point = overrides[-1].split("=")[1]
        trained.append((point, seed))
        if (point, seed) in diverges:
            raise NonFiniteLossError(f"{point} blew up")
        return [{"scenario": scenario, "seed": seed, "zoo": model_kind, "side": "pfd_tf",
                 "auc": first_start[point] - (seed - 100) * 0.001}]

    monkeypatch.setattr(pfd, "train_pfd_tf", train)
    grid = [[f"train.point={name}"] for name in first_start]
    tuning = []
    done = tables.Done(str(tmp_path / "runs.jsonl"))
    pick = pfd.choose_pfd_tf(done, "p", "world.yaml", "ensemble", "deepfm", [], grid, str(tmp_path), 100, tuning)
    assert pick == ["train.point=slow"]
    assert trained == [("fast", 100), ("steady", 100), ("slow", 100), ("fast", 101), ("slow", 101)]
    assert [(r["overrides"], r["seed"], r["second_start"], r["auc"]) for r in tuning][3:] == [
        (["train.point=fast"], 101, True, None), (["train.point=slow"], 101, True, 0.659)]

    trained.clear()  # started again (after an interruption): nothing is trained twice, the same point wins
    assert pfd.choose_pfd_tf(done, "p", "world.yaml", "ensemble", "deepfm", [], grid, str(tmp_path), 100,
                             []) == ["train.point=slow"]
    assert trained == []

    diverges.add(("slow", 101))  # every point diverges on one of its starts: the best first start, as before
    assert pfd.choose_pfd_tf(tables.Done(str(tmp_path / "other.jsonl")), "p", "world.yaml", "ensemble", "deepfm",
                             [], grid, str(tmp_path), 100, []) == ["train.point=fast"]
