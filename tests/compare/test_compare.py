"""pfd-compare: its statistics, its grid, its methods, its validation split, and a comparison run as a user runs it.

A small run chooses on another world (`--validation_config`) with a grid point
whose rate diverges for real.  The end-to-end run that is killed, resumed and
read back: `test_compare_end_to_end.py`.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf._keras import tf
from pfd_tf.compare import plot, report
from pfd_tf.compare.comparison import build_grid
from pfd_tf.compare.console import run_console
from pfd_tf.compare.grid import Axis, Grid, GridPoint, edge_notes, parse_axis, split_values
from pfd_tf.compare.methods import Method, methods_for, parse_floats, parse_modes
from pfd_tf.compare.runs import Run, best_point
from pfd_tf.compare.split import validation_split
from pfd_tf.compare.stats import paired_t_test, t_quantile, t_two_sided_p
from pfd_tf.config import ConfigError, Mode
from pfd_tf.data.files import resolve_files
from tests.conftest import write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------
def test_two_sided_p_against_known_values():
    # df = 2 has a closed form: P(|T| >= t) = 1 - t / sqrt(t^2 + 2).
    assert t_two_sided_p(2.0, 2) == pytest.approx(1 - 2 / math.sqrt(6), abs=1e-10)
    # df = 1 (Cauchy): 1 - (2 / pi) atan(t).
    assert t_two_sided_p(3.0, 1) == pytest.approx(1 - 2 / math.pi * math.atan(3.0), abs=1e-10)
    # Table values of the 97.5% quantile.
    assert t_two_sided_p(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.776, 4) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.228, 10) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(-2.776, 4) == t_two_sided_p(2.776, 4)
    assert t_two_sided_p(0.0, 3) == 1.0


def test_paired_t_test_by_hand():
    result = paired_t_test([0.01, 0.02, 0.03])
    t = 0.02 / (0.01 / math.sqrt(3))
    assert result["n"] == 3
    assert result["mean"] == pytest.approx(0.02) and result["sd"] == pytest.approx(0.01)
    assert result["t"] == pytest.approx(t)
    assert result["p"] == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-10)
    assert paired_t_test([-0.01, -0.02, -0.03])["t"] == pytest.approx(-t)


def test_t_quantile_and_the_confidence_interval_against_table_values():
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.975, 10) == pytest.approx(2.228, abs=1e-3)
    low, high = paired_t_test([0.01, 0.02, 0.03])["ci95"]
    half = 4.303 * 0.01 / math.sqrt(3)
    assert low == pytest.approx(0.02 - half, abs=1e-5) and high == pytest.approx(0.02 + half, abs=1e-5)
    assert paired_t_test([0.01, 0.01])["ci95"] == [0.01, 0.01]


def test_paired_t_test_with_too_few_seeds_or_no_spread():
    one = paired_t_test([0.004])
    assert one == {"n": 1, "mean": 0.004, "sd": None, "t": None, "p": None, "ci95": None}
    assert math.isnan(paired_t_test([])["mean"]) and paired_t_test([])["p"] is None
    same = paired_t_test([0.01, 0.01, 0.01])
    assert same["sd"] == 0.0 and same["t"] is None and same["p"] == 0.0
    assert paired_t_test([0.0, 0.0])["p"] == 1.0


# --------------------------------------------------------------------------
# grid
# --------------------------------------------------------------------------
def test_the_grid_expands_to_every_combination_of_override_sets(tmp_path):
    grid = build_grid(1.6, "0.4,1.6", "none,batch", "0,1e-6", ["model.student_tower=[16,8],[32]"])
    points = grid.points()
    assert len(points) == 2 * 2 * 2 * 2
    expected = [[f"train.learning_rate={r}", f"model.normalization={n}", f"train.embedding_l2={l2}",
                 f"model.student_tower={t}"]
                for r in ("0.4", "1.6") for n in ("none", "batch") for l2 in ("0.0", "1.0e-06")
                for t in ("[16, 8]", "[32]")]
    assert [p.overrides() for p in points] == expected
    assert points[-1].as_dict() == {"train.learning_rate": 1.6, "model.normalization": "batch",
                                    "train.embedding_l2": 1e-6, "model.student_tower": [32]}
    # Every override reads back as the value it names (1e-6 is a number, not YAML 1.1's string).
    config = config_lib.load(write_tiny_world(str(tmp_path)), points[-1].overrides())
    assert config.train.embedding_l2 == 1e-6 and config.model.normalization.value == "batch"
    assert config.model.student_tower == (32,)
    assert grid.to_dict() == {"train.learning_rate": [0.4, 1.6], "model.normalization": ["none", "batch"],
                              "train.embedding_l2": [0.0, 1e-6], "model.student_tower": [[16, 8], [32]]}
    # The default: the config's rate x 1/4..4, and nothing else.
    default = build_grid(1.6, "", "", "", [])
    assert [p.as_dict() for p in default.points()] == [{"train.learning_rate": r} for r in (0.4, 0.8, 1.6, 3.2, 6.4)]


def test_grid_points_name_their_runs_and_report_cells():
    rate_only = GridPoint((("train.learning_rate", "0.8"),))
    assert rate_only.slug == "lr0.8" and rate_only.label == "lr 0.8"  # the run directories before the grid
    point = build_grid(1.0, "0.8", "batch", "1e-6", ["model.student_tower=[16,8]"]).points()[0]
    assert point.slug == "lr0.8-norm_batch-l2_1e-06-student_tower_16_8"
    assert point.label == "lr 0.8, norm batch, l2 1e-06, student_tower [16, 8]"
    assert split_values(" a, [1,2] ,{x: 1, y: 2},, b") == ["a", "[1,2]", "{x: 1, y: 2}", "b"]


def test_grid_refusals_name_the_flag_and_key():
    with pytest.raises(ConfigError, match=r"^--grid model\.normalization: the key is in the grid twice"):
        build_grid(1.0, "", "none,batch", "", ["model.normalization=layer"])
    with pytest.raises(ConfigError, match=r"^--grid distill\.lambda: each method sets it"):
        build_grid(1.0, "", "", "", ["distill.lambda=0.1,0.5"])
    with pytest.raises(ConfigError, match=r"^--set model\.normalization: the grid tries values of"):
        build_grid(1.0, "", "none,batch", "", [], overrides=["model.normalization=batch"])
    with pytest.raises(ConfigError, match=r"^--grid 'train\.epochs': expected key=value1,value2"):
        parse_axis("train.epochs")
    with pytest.raises(ConfigError, match=r"^--grid train\.epochs: no values"):
        parse_axis("train.epochs=")
    with pytest.raises(ConfigError, match=r"^--embedding_l2: L2 weights must be >= 0"):
        build_grid(1.0, "", "", "-1", [])
    with pytest.raises(ConfigError, match=r"^--rates: learning rates must be positive"):
        build_grid(1.0, "0,1", "", "", [])


def _run(method, point, auc=None, diverged=None, seed=0, logloss=0.5):
    student = None if diverged else {"logloss": logloss, **({"auc": auc} if auc is not None else {})}
    return Run(method, point.value("train.learning_rate"), seed, student, None, 1.0, "/tmp/x", point, diverged)


def test_the_best_point_per_method_skips_diverged_points_and_notes_grid_edges():
    grid = Grid.of([Axis.of("train.learning_rate", [0.1, 0.4, 1.6], "--rates"),
                    Axis.of("model.normalization", ["none", "batch"], "--normalizations")])
    points = {(p.value("train.learning_rate"), p.value("model.normalization")): p for p in grid.points()}
    aucs = {(0.1, "none"): 0.70, (0.4, "none"): 0.75, (1.6, "none"): None,
            (0.1, "batch"): 0.74, (0.4, "batch"): 0.72, (1.6, "batch"): 0.71}
    runs = [_run(Method(Mode.BASELINE), points[k], auc, "nan loss" if auc is None else None) for k, auc in aucs.items()]
    assert best_point(runs) == points[(0.4, "none")]
    assert best_point([r for r in runs if r.point != points[(0.4, "none")]]) == points[(0.1, "batch")]
    assert best_point([_run(Method(Mode.MD), p, diverged="inf") for p in grid.points()]) is None
    # Undefined AUC (one class) ranks by log loss, below any AUC.
    assert best_point([_run(Method(Mode.MD), points[(0.1, "none")], logloss=0.2),
                       _run(Method(Mode.MD), points[(0.4, "none")], logloss=0.3),
                       _run(Method(Mode.MD), points[(1.6, "none")], auc=0.5, logloss=0.9)]) == points[(1.6, "none")]
    # Batch's best rate 0.1 is the grid's smallest; none's best 0.4 is inside (1.6 diverged).
    scores = {r.point: (1, r.student["auc"]) for r in runs if not r.diverged}
    assert edge_notes("baseline", grid, scores) == ["baseline with norm batch: best lr 0.1 is the grid's smallest"]
    assert edge_notes("x", Grid.of([Axis.of("train.embedding_l2", [0.0, 1e-6], "--embedding_l2")]),
                      {GridPoint((("train.embedding_l2", "0.0"),)): (1, 0.7)}) == []  # 0 has nothing below


def test_the_report_counts_the_seeds_a_paired_difference_uses():
    grid = Grid.of([Axis.of("train.learning_rate", [0.1], "--rates")])
    point = grid.points()[0]
    base, md, lupi = Method(Mode.BASELINE), Method(Mode.MD), Method(Mode.LUPI)
    tuning = [_run(base, point, 0.7), _run(md, point, 0.71), _run(lupi, point, diverged="nan")]
    results = [_run(base, point, 0.70, seed=0), _run(base, point, 0.72, seed=1), _run(base, point, 0.74, seed=2),
               _run(md, point, 0.71, seed=0), _run(md, point, diverged="inf", seed=1),
               _run(md, point, 0.76, seed=2)]
    chosen = {"baseline": point, "md": point, "lupi": None}
    rows = report.summarize([base, md, lupi], chosen, tuning, results, [0, 1, 2], 0.5)
    md_row = rows[1]
    assert md_row["paired_seeds"] == [0, 2] and md_row["diverged_seeds"] == [1]
    assert md_row["auc_minus_baseline"] == pytest.approx([0.01, 0.02])
    assert md_row["paired_t_test"]["n"] == 2
    assert rows[2]["diverged"] and rows[2]["grid_point"] is None and rows[2]["student_auc"] == []
    text = report.markdown("t", rows, tuning, grid, [0, 1, 2])
    assert "| md | lr 0.1 |" in text and "+0.0100, diverged, +0.0200" in text and "| 2 of 3 |" in text
    assert "| lupi | diverged at every grid point |" in text
    assert "| lr 0.1 | **0.7000** | **0.7100** | diverged |" in text
    # What the PNG's paired panel draws: each world's difference, their mean and its 95% CI.
    panel = plot.paired_points(rows)
    assert [p["method"] for p in panel] == ["md"]
    assert panel[0]["seeds"] == [0, 2] and panel[0]["ci95"] == md_row["paired_t_test"]["ci95"]


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_the_png_has_a_paired_difference_panel(tmp_path):
    grid = Grid.of([Axis.of("train.learning_rate", [0.1], "--rates")])
    point = grid.points()[0]
    base, md = Method(Mode.BASELINE), Method(Mode.MD)
    results = [_run(m, point, auc + 0.01 * s, seed=s) for m, auc in ((base, 0.7), (md, 0.705)) for s in (0, 1, 2)]
    rows = report.summarize([base, md], {"baseline": point, "md": point}, [], results, [0, 1, 2], 0.5)
    plot.write_png(str(tmp_path / "two.png"), "t", rows)
    plot.write_png(str(tmp_path / "one.png"), "t", rows[:1])  # the baseline alone: no differences to draw
    two, one = _png_size(str(tmp_path / "two.png")), _png_size(str(tmp_path / "one.png"))
    assert two[0] == 2 * one[0] and two[1] == one[1]


def test_a_runs_console_goes_to_its_log_and_comes_back(tmp_path, capfd):
    path = str(tmp_path / "train.log")
    with run_console(path):
        print("a progress line")
        sys.stderr.write("a warning\n")
        os.write(1, b"fd one\n")
        os.write(2, b"fd two\n")
        tf.get_logger().error("a tensorflow error")
    print("after the run")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for line in ("a progress line", "a warning", "fd one", "fd two", "a tensorflow error"):
        assert line in text
    assert "after the run" not in text
    out, err = capfd.readouterr()
    assert "after the run" in out and "a progress line" not in out + err and "a tensorflow error" not in err


# --------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------
def _config(privileged: bool = True, lambda_: float = 0.5):
    features = [{"name": "user_id", "kind": "categorical", "hash_buckets": 10, "dim": 2}]
    if privileged:
        features.append({"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 2,
                         "role": "privileged"})
    return config_lib.from_dict({
        "data": {"train_files": ["t.csv"], "eval_files": ["e.csv"], "label": "y"}, "features": features,
        "distill": {"mode": "pfd" if privileged else "md", "lambda": lambda_}, "train": {"steps": 10}})


def test_default_modes_are_what_the_config_can_train():
    assert parse_modes("", _config(privileged=False)) == [Mode.BASELINE, Mode.MD]
    assert parse_modes("", _config()) == [m for m in Mode if m is not Mode.TEACHERS]  # no teachers: list


def test_a_teachers_list_is_compared_as_it_is_against_the_baseline():
    raw = _config(privileged=False).to_dict()
    raw["distill"].pop("mode")
    raw["teachers"] = [{"name": "fm", "model": "fm"}]
    config = config_lib.from_dict(raw)
    assert parse_modes("", config) == [Mode.BASELINE, Mode.MD, Mode.TEACHERS]
    assert Method(Mode.TEACHERS).overrides() == []  # the config's own list, untouched
    with pytest.raises(ConfigError, match=r"--modes: teachers trains the config's teachers: list"):
        parse_modes("teachers", _config())


def test_a_terms_config_is_swept_by_its_soft_label_weight_and_its_baseline_drops_the_terms():
    raw = _config().to_dict()
    raw["distill"] = {"mode": "pfd", "terms": [{"kind": "soft_label", "weight": 0.4},
                                               {"kind": "hint", "weight": 0.1}]}
    config = config_lib.from_dict(raw)
    # The config's own lambda is its soft label's weight: a sweep value equal to it is not trained twice.
    assert [m.lambda_ for m in methods_for([Mode.BASELINE, Mode.PFD], [0.4, 0.8], config)] == [None, None, 0.8]

    def load(method):
        return config_lib.from_dict(config_lib.apply_overrides(raw, method.overrides(config.distill.terms)))

    swept = load(Method(Mode.PFD, 0.8)).distill.terms
    assert [(t.kind, t.weight) for t in swept] == [("soft_label", 0.8), ("hint", 0.1)]
    baseline = load(Method(Mode.BASELINE))
    assert baseline.distill.mode is Mode.BASELINE and baseline.distill.terms == ()
    hint_only = config_lib.from_dict({**raw, "distill": {"mode": "pfd", "terms": [{"kind": "hint", "weight": 0.1}]}})
    with pytest.raises(ConfigError, match=r"^--lambdas: the config's distill.terms has no soft_label term"):
        Method(Mode.PFD, 0.8).overrides(hint_only.distill.terms)


def test_named_modes_always_include_the_baseline_once():
    assert parse_modes("pfd", _config()) == [Mode.BASELINE, Mode.PFD]
    assert parse_modes(" md , pfd,md ", _config()) == [Mode.BASELINE, Mode.MD, Mode.PFD]
    modes = parse_modes("pfd,baseline,pfd", _config())
    assert sorted(modes) == sorted([Mode.BASELINE, Mode.PFD])
    with pytest.raises(ConfigError, match=r"^--modes: unknown mode 'bogus' \(choose from: baseline, lupi"):
        parse_modes("pfd,bogus", _config())
    with pytest.raises(ConfigError, match=r"^--modes: lupi needs a feature with role: privileged"):
        parse_modes("lupi", _config(privileged=False))


def test_lambda_sweep_adds_pfd_runs_without_repeating_the_configs_lambda():
    config = _config(lambda_=0.5)
    methods = methods_for([Mode.BASELINE, Mode.PFD], [0.3, 0.5, 0.7], config)
    assert methods == [Method(Mode.BASELINE), Method(Mode.PFD), Method(Mode.PFD, 0.3), Method(Mode.PFD, 0.7)]
    assert [m.name for m in methods] == ["baseline", "pfd", "pfd λ=0.3", "pfd λ=0.7"]
    assert [m.slug for m in methods] == ["baseline", "pfd", "pfd-lambda0.3", "pfd-lambda0.7"]
    assert methods[2].overrides() == ["distill.mode=pfd", "distill.lambda=0.3"]
    # A sweep without pfd among the modes still has the config's PFD run to compare its lambdas with.
    assert methods_for([Mode.BASELINE], [0.3], config) == [Method(Mode.BASELINE), Method(Mode.PFD),
                                                          Method(Mode.PFD, 0.3)]
    assert methods_for([Mode.BASELINE, Mode.MD], [], config) == [Method(Mode.BASELINE), Method(Mode.MD)]
    with pytest.raises(ConfigError, match=r"^--lambdas: 1.5 is not in \[0, 1\]"):
        methods_for([Mode.BASELINE], [0.3, 1.5], config)
    with pytest.raises(ConfigError, match=r"^--lambdas: a PFD lambda sweep needs a feature with role: privileged"):
        methods_for([Mode.BASELINE], [0.3], _config(privileged=False))
    with pytest.raises(ConfigError, match=r"^--lambdas: 'x' is not a number"):
        parse_floats("0.1, x", "--lambdas")
    assert parse_floats(" 0.1, ,0.2 ", "--rates") == [0.1, 0.2]


# --------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------
def _split_world(tmp_path, train_days=3, **data):
    for day in range(train_days + 1):
        folder = tmp_path / ("test" if day == train_days else "train")
        folder.mkdir(exist_ok=True)
        (folder / f"day-{day:02d}.csv").write_text("user_id,y\n1,0\n2,1\n")
    raw = {"data": {"train_files": ["train/*.csv"], "eval_files": ["test/*.csv"], "label": "y", **data},
           "features": [{"name": "user_id", "kind": "categorical", "hash_buckets": 10, "dim": 2}],
           "distill": {"mode": "baseline"}, "train": {"steps": 10}}
    return config_lib.from_dict(raw, str(tmp_path))


def test_validation_split_holds_out_the_last_training_file(tmp_path):
    split = validation_split(_split_world(tmp_path))
    day = lambda d: str(tmp_path / "train" / f"day-{d:02d}.csv")  # noqa: E731
    real = lambda paths: [os.path.realpath(p) for p in paths]  # noqa: E731
    assert real(split.data.train_files) == real([day(0), day(1)])
    assert real(split.data.eval_files) == real([day(2)])


def test_validation_split_honours_validation_files(tmp_path):
    split = validation_split(_split_world(tmp_path, validation_files=["train/day-00.csv"]))
    assert [os.path.basename(p) for p in split.data.train_files] == ["day-01.csv", "day-02.csv"]
    assert [os.path.basename(p) for p in split.data.eval_files] == ["day-00.csv"]


def test_validation_split_refusals(tmp_path):
    (tmp_path / "one").mkdir()
    with pytest.raises(ConfigError, match=r"^data\.validation_files: the training files are one file"):
        validation_split(_split_world(tmp_path / "one", train_days=1))
    held_out = r"^data\.validation_files: .*day-03\.csv is a held-out file \(data\.eval_files\)"
    with pytest.raises(ConfigError, match=held_out):
        validation_split(_split_world(tmp_path, validation_files=["test/*.csv"]))
    with pytest.raises(ConfigError, match=r"^data\.validation_files: they are every training file"):
        validation_split(_split_world(tmp_path, validation_files=["train/*.csv"]))


@pytest.mark.parametrize("validation", ["./test/day-03.csv", "./train/day-02.csv"])
def test_validation_split_sees_a_file_however_it_is_spelled(tmp_path, validation):
    try:
        split = validation_split(_split_world(tmp_path, validation_files=[validation]))
    except ConfigError:
        return  # ./test/day-03.csv: refused as the held-out file
    train = {os.path.realpath(p) for p in split.data.train_files}
    assert not train & {os.path.realpath(p) for p in split.data.eval_files}, "validated on a training file"
    assert "test" not in validation, "validated on the held-out file"


def _env():
    return {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}


# --------------------------------------------------------------------------
# pfd-compare: chosen on another world, a grid point that diverges
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_worlds(tmp_path_factory):
    """Two tiny worlds: one to choose the grid point on, one to evaluate on."""
    base = tmp_path_factory.mktemp("two")
    return write_tiny_world(str(base / "choose"), seed=1), write_tiny_world(str(base / "evaluate"), seed=2)


def test_pfd_compare_chooses_on_another_world_and_goes_on_past_a_diverged_grid_point(two_worlds, tmp_path):
    choose, evaluate = two_worlds
    out = str(tmp_path / "compare")
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.compare", "--config", evaluate, "--validation_config",
                           choose, "--out", out, "--modes", "baseline,md", "--rates", "0.05,1e30",
                           "--normalizations=", "--seeds", "0"],
                          capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validation  baseline  lr 1e+30: diverged" in proc.stdout
    assert "step " not in proc.stdout  # the runs' progress lines are in their train.log
    with open(os.path.join(out, "compare.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert record["validation_config"] == os.path.abspath(choose)
    assert record["evaluation_configs"] == {"0": os.path.abspath(evaluate)}
    assert record["grid_points"] == [{"train.learning_rate": 0.05}, {"train.learning_rate": 1e30}]
    choose_dir, evaluate_dir = (os.path.realpath(os.path.dirname(p)) for p in (choose, evaluate))
    for method in ("baseline", "md"):
        tried = [r for r in record["validation_runs"] if r["method"] == method]
        assert [r["grid_point"] for r in tried] == record["grid_points"]  # the same grid for every method
        assert tried[0]["diverged"] is None and "the training loss became" in tried[1]["diverged"]
        assert tried[1]["student"] is None
        assert record["chosen"][method] == {"train.learning_rate": 0.05}
        for run in tried:  # chosen on the other world's training files
            saved = config_lib.load(os.path.join(run["model_dir"], "config.yaml"))
            assert all(os.path.realpath(p).startswith(choose_dir + os.sep)
                       for p in (*saved.data.train_files, *saved.data.eval_files))
        with open(os.path.join(tried[0]["model_dir"], "train.log"), encoding="utf-8") as f:
            assert "step 12/12" in f.read()
        with open(os.path.join(tried[1]["model_dir"], "train.log"), encoding="utf-8") as f:
            assert "pfd-compare: this run diverged: the training loss became" in f.read()
    for run in record["runs"]:  # evaluated on this world's held-out file
        assert run["diverged"] is None and run["seed"] == 0
        saved = config_lib.load(os.path.join(run["model_dir"], "config.yaml"))
        assert [os.path.realpath(p) for p in resolve_files(saved, "eval_files")] == \
            [os.path.join(evaluate_dir, "test", "test.csv")]
    with open(os.path.join(out, "compare.md"), encoding="utf-8") as f:
        assert "| lr 1e+30 | diverged | diverged |" in f.read()


def test_pfd_compare_refuses_a_validation_config_that_reads_the_held_out_files(two_worlds, tmp_path):
    choose, evaluate = two_worlds
    with open(choose, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    choose_dir = os.path.dirname(choose)
    raw["data"]["train_files"] = [os.path.join(choose_dir, "train", "*.csv")]
    raw["data"]["eval_files"] = [os.path.join(choose_dir, "test", "*.csv")]
    # The evaluation's held-out file, spelled another way.
    raw["data"]["validation_files"] = [os.path.join(choose_dir, "..", "evaluate", "test", "test.csv")]
    validation = str(tmp_path / "validation.yaml")
    with open(validation, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f)
    out = tmp_path / "compare"
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.compare", "--config", evaluate, "--validation_config",
                           validation, "--out", str(out), "--modes", "baseline", "--rates", "0.05"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 2, proc.stderr[-3000:]
    held_out = os.path.realpath(os.path.join(os.path.dirname(evaluate), "test", "test.csv"))
    assert f"pfd-compare: error: --validation_config {validation}: its runs would read {held_out}, a held-out " \
           f"file (data.eval_files) of {evaluate}" in proc.stderr
    assert not out.exists()
