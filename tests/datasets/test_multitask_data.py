"""The two-task world (`pfd_tf.datasets.multitask`): the claims of its generative story, and its files."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from pfd_tf.datasets.multitask import (
    BUY,
    LIKE,
    MULTITASK_COLUMNS,
    MULTITASK_FEATURES,
    MultitaskWorld,
    generate_multitask,
    multitask_features,
    oracle_aucs,
    simulate_multitask,
    write_multitask_csvs,
)
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY
from pfd_tf.metrics import exact_auc


@pytest.fixture(scope="module")
def world():
    return simulate_multitask(MultitaskWorld.for_rows(30_000), seed=0, latents=True)


def _cell(columns, like, buy):
    return (columns[LIKE] == like) & (columns[BUY] == buy)


def test_rates_are_the_worlds(world):
    assert world[LIKE].mean() == pytest.approx(0.2, abs=0.01)
    assert world[BUY].mean() == pytest.approx(0.05, abs=0.01)


def test_a_liked_impression_is_several_times_more_likely_to_be_bought(world):
    like, buy = world[LIKE] == 1, world[BUY] == 1
    assert buy[like].mean() > 2.5 * buy[~like].mean()


def test_the_tasks_disagree_on_many_rows_and_every_combination_occurs(world):
    like, buy = world[LIKE] == 1, world[BUY] == 1
    assert (~like[buy]).mean() > 0.35  # purchases not liked
    assert (~buy[like]).mean() > 0.7  # likes not bought
    for a in (0, 1):
        for b in (0, 1):
            assert _cell(world, a, b).mean() > 0.01, (a, b)


def test_one_tasks_logit_is_a_poor_ranking_for_the_other(world):
    """Naive cross-task distillation has something to lose: the like logit ranks purchases far worse than the
    buy logit does (and vice versa), though the two are correlated."""
    assert exact_auc(world[BUY], world["mu_like"]) < exact_auc(world[BUY], world["mu_buy"]) - 0.08
    assert exact_auc(world[LIKE], world["mu_buy"]) < exact_auc(world[LIKE], world["mu_like"]) - 0.08
    assert 0.3 < np.corrcoef(world["mu_like"], world["mu_buy"])[0, 1] < 0.85


def test_within_one_label_the_other_tasks_positives_rank_higher(world):
    """The fine-grained orders of CrossDistil's augmented tasks hold for the regular-feature logits:
    like: x_{++} > x_{+-} and x_{-+} > x_{--}; buy: x_{++} > x_{-+} and x_{+-} > x_{--}."""
    like, buy = world[LIKE] == 1, world[BUY] == 1
    assert exact_auc(buy[like], world["mu_like"][like]) > 0.6
    assert exact_auc(buy[~like], world["mu_like"][~like]) > 0.6
    assert exact_auc(like[buy], world["mu_buy"][buy]) > 0.56
    assert exact_auc(like[~buy], world["mu_buy"][~buy]) > 0.6


def test_privileged_features_are_informative_beyond_the_regular_ones(world):
    for label in (LIKE, BUY):
        assert exact_auc(world[label], world["dwell_time"]) > 0.68, label
        # the event-level part of the logit, which only post-event features can see
        event = world[f"z_{label}"] - world[f"mu_{label}"]
        assert np.corrcoef(np.log(world["dwell_time"]), event)[0, 1] > 0.2, label
        assert exact_auc(world[label], world[f"z_{label}"]) > exact_auc(world[label], world[f"mu_{label}"]) + 0.02
    assert exact_auc(world[BUY], world["viewed_comments"]) > 0.62


def test_oracle_aucs_order_teacher_student_and_the_other_tasks_logit(world):
    oracle = oracle_aucs(world)
    for task in (LIKE, BUY):
        assert oracle[f"{task}_teacher"] > oracle[f"{task}_student"] > oracle[f"{task}_from_other"] > 0.6
        assert 0.6 < oracle[f"{task}_multi_auc"] < 1.0


def test_same_seed_same_world_other_seed_another():
    small = MultitaskWorld.for_rows(2_000, 4)
    first, again, other = (simulate_multitask(small, s) for s in (3, 3, 4))
    assert all(np.array_equal(first[k], again[k]) for k in MULTITASK_COLUMNS)
    assert not np.array_equal(first[BUY], other[BUY])


def test_files_hold_both_labels_and_the_privileged_columns_by_day_and_no_config(tmp_path):
    out = str(tmp_path / "world")
    paths = generate_multitask(out, rows=800, seed=1, days=4)
    assert [os.path.relpath(p, out) for p in paths] == [
        "train/day-00.csv", "train/day-01.csv", "train/day-02.csv", "test/day-03.csv"]
    assert not os.path.exists(os.path.join(out, "config.yaml"))
    rows = []
    for day, path in enumerate(paths):
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames) == MULTITASK_COLUMNS
            for row in reader:
                assert row[DAY] == str(day)
                rows.append(row)
    assert len(rows) == 800
    assert {r[LIKE] for r in rows} == {"0", "1"} and {r[BUY] for r in rows} == {"0", "1"}
    assert {r["viewed_comments"] for r in rows} == {"0", "1"}
    assert all(float(r["dwell_time"]) >= 1.0 and len(r["dwell_time"].split(".")[1]) == 1 for r in rows)


def test_feature_entries_mark_the_post_event_columns_privileged():
    small = MultitaskWorld.for_rows(2_000, 4)
    entries = multitask_features(simulate_multitask(small, 0), small)
    assert [e["name"] for e in entries] == [c.name for c in MULTITASK_FEATURES]
    assert {e["name"] for e in entries if e["role"] == "privileged"} == {"dwell_time", "viewed_comments"}
    assert all(len(e["boundaries"]) > 5 for e in entries if e["kind"] == "numeric")


@pytest.mark.parametrize("label", [LIKE, BUY])
def test_each_label_reads_through_todays_pipeline_as_a_one_task_world(tmp_path, label):
    """Either label can be the one task of `data.label` (the other is ignored)."""
    import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
    from pfd_tf import config as config_lib
    from pfd_tf.data.pipeline import make_dataset_fn

    small = MultitaskWorld.for_rows(800, 4)
    columns = simulate_multitask(small, 2)
    write_multitask_csvs(columns, small, str(tmp_path))
    raw = run_config(multitask_features(columns, small), 0, 0)
    raw["data"]["label"] = label
    config = config_lib.from_dict(raw, base_dir=str(tmp_path))
    (task,) = [task.name for task in config.task_specs]
    labels = np.concatenate([y[task].numpy() for _, y in make_dataset_fn(config, "eval", 64, training=False)(None)])
    np.testing.assert_array_equal(labels, columns[label][columns[DAY] == small.days - 1])


def test_both_labels_read_by_task_name(tmp_path):
    """`tasks:` with both labels: the pipeline yields each under its task's name, row for row."""
    import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
    from pfd_tf import config as config_lib
    from pfd_tf.data.pipeline import make_dataset_fn

    small = MultitaskWorld.for_rows(800, 4)
    columns = simulate_multitask(small, 2)
    write_multitask_csvs(columns, small, str(tmp_path))
    raw = run_config(multitask_features(columns, small), 0, 0)
    raw["data"].pop("label", None)
    raw["tasks"] = [{"name": "like", "label": LIKE}, {"name": "buy", "label": BUY}]
    config = config_lib.from_dict(raw, base_dir=str(tmp_path))
    batches = list(make_dataset_fn(config, "eval", 64, training=False)(None))
    held_out = columns[DAY] == small.days - 1
    for task, column in (("like", LIKE), ("buy", BUY)):
        labels = np.concatenate([y[task].numpy() for _, y in batches])
        np.testing.assert_array_equal(labels, columns[column][held_out])
