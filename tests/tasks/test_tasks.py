"""pfd_tf.tasks: each kind's loss against hand values, its metrics' keys, and the tasks a config makes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pfd_tf import config as config_lib
from pfd_tf.names import DEFAULT_TASK
from pfd_tf.tasks.binary import BinaryTask
from pfd_tf.tasks.build import tasks_for
from pfd_tf.tasks.regression import RegressionTask

LABELS = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
LOGITS = np.array([2.0, -1.0, -0.5, 0.0], np.float32)


def test_binary_loss_is_the_mean_log_loss_of_eq_6():
    by_hand = np.mean([math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(-1.0)),
                       math.log(1 + math.exp(0.5)), math.log(2.0)])
    assert float(BinaryTask("ctr", "click").loss(LABELS, LOGITS)) == pytest.approx(by_hand, rel=1e-6)


def test_regression_loss_is_the_mean_squared_error():
    targets = np.array([3.0, 0.5, -1.0, 2.0], np.float32)
    by_hand = ((3.0 - 2.0) ** 2 + (0.5 + 1.0) ** 2 + (-1.0 + 0.5) ** 2 + (2.0 - 0.0) ** 2) / 4
    assert float(RegressionTask("dwell", "dwell_time").loss(targets, LOGITS)) == pytest.approx(by_hand, rel=1e-6)


def test_the_served_task_keeps_the_one_label_keys_and_another_adds_its_name():
    served = [(key, metric.name) for key, metric in BinaryTask("ctr", "click").metrics("student")]
    assert served == [("student_logits", "student_auc"), ("student_logits", "student_logloss")]
    cvr = [(key, metric.name) for key, metric in BinaryTask("cvr", "buy", served=False).metrics("teacher")]
    assert cvr == [("teacher_cvr_logits", "teacher_cvr_auc"), ("teacher_cvr_logits", "teacher_cvr_logloss")]
    dwell = [(key, metric.name) for key, metric in RegressionTask("dwell", "d", served=False).metrics("student")]
    assert dwell == [("student_dwell_logits", "student_dwell_mse"), ("student_dwell_logits", "student_dwell_rmse")]


def test_regression_metrics_read_predictions_as_they_are():
    targets = np.array([3.0, 0.5, -1.0, 2.0], np.float32)
    (_, mse), (_, rmse) = RegressionTask("dwell", "d").metrics("student")
    for metric in (mse, rmse):
        metric.update_state(targets, LOGITS)
    assert float(mse.result()) == pytest.approx(7.5 / 4, rel=1e-6)
    assert float(rmse.result()) == pytest.approx(math.sqrt(7.5 / 4), rel=1e-6)


def test_data_label_is_the_one_binary_task_named_main(tiny_config_path):
    (task,) = tasks_for(config_lib.load(tiny_config_path))
    assert (type(task), task.name, task.label, task.weight, task.served) == (BinaryTask, DEFAULT_TASK, "label", 1.0,
                                                                             True)
