"""What the exported student is given, and what pfd-export and pfd-vocab are given (issue 19).

- A number that is not finite (NaN, +-inf) is served as a missing value: the
  exported student, reloaded in a fresh process without pfd_tf (as
  `serve_export.py` does), gives it exactly what it gives an empty field (its
  `default`, or the missing id); a sequence of another width than max_len
  is refused by the serving graph, naming the column and max_len.
- A config.yaml edited by hand after its run trained is refused by
  `pfd-export`, naming each key edited (`pfd_tf.config.fingerprint`);
  a checkpoint that does not fit the config is an ExportError, not a
  traceback.
- `pfd-vocab --out` naming a file is refused, naming it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import write_tiny_world
from pfd_tf.cli.train import run_task
from test_bad_inputs import finished, run_copy, snapshot  # noqa: F401

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
ROOT = os.path.dirname(HERE)
ODD = ["", "nan", "inf", "-inf", "1e39", "-1e39"]  # served as NaN, NaN, inf, -inf, inf, -inf
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


def _run(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)


@pytest.fixture(scope="module")
def missing_id_run(tmp_path_factory):
    """A finished run whose student's `price` has missing_id: (world, model_dir)."""
    world = str(tmp_path_factory.mktemp("missing"))
    write_tiny_world(world)
    model_dir = os.path.join(world, "run")
    assert run_task(os.path.join(world, "config.yaml"), model_dir, ["features.price.missing_id=true"]) == 0
    return world, model_dir


SERVE = """
import json, sys
import tensorflow as tf
request = json.loads(sys.argv[2])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
row = {name: tf.constant(value, tf.float32 if name == "price" else tf.string) for name, value in request["row"].items()}
out = {}
for price in request["prices"]:  # a client sends a missing number as NaN
    price_tensor = tf.constant([float(price) if price else float("nan")], tf.float32)
    out[price] = float(serve(**dict(row, price=price_tensor))["probability"].numpy().reshape(-1)[0])
for width in (3, 4, 5):
    tags = tf.constant([["1"] + [""] * (width - 1)])
    try:
        out[width] = float(serve(**dict(row, tags=tags))["probability"].numpy().reshape(-1)[0])
    except tf.errors.InvalidArgumentError as err:
        out[width] = str(err)
print(json.dumps(out))
assert "pfd_tf" not in sys.modules
"""


def _served(model_dir: str, prices: list[str]) -> dict:
    """The exported student, reloaded in a fresh process without pfd_tf: {price: probability} for one request
    row with each price, and {width: probability, or the error} for its tags padded to 3, 4 and 5 ids."""
    row = {"user_id": ["7"], "item_id": ["3"], "device": ["ios"], "price": [10.0], "tags": [["1", "2", "", ""]]}
    proc = _run("-c", SERVE, os.path.join(model_dir, "export", "student"), json.dumps({"row": row, "prices": prices}))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def served(finished):
    return _served(finished[1], ODD + ["0", "500"])  # the tiny world's price: default 0, no missing_id


def test_a_number_that_is_not_finite_is_served_as_the_default(served):
    assert [served[p] for p in ODD + ["0"]] == [served["0"]] * (len(ODD) + 1), served
    assert served["500"] != served["0"]  # an ordinary price is not


def test_a_number_that_is_not_finite_is_served_the_missing_id(missing_id_run):
    served = _served(missing_id_run[1], ODD + ["0", "500"])
    assert [served[p] for p in ODD] == [served[""]] * len(ODD), served
    assert served["0"] != served[""] and served["500"] != served[""]  # 0 and 500 have ids of their own


def test_a_sequence_of_another_width_than_max_len_is_refused_by_the_served_graph(served):
    assert isinstance(served["4"], float)
    for width in ("3", "5"):
        assert isinstance(served[width], str), served[width]
        assert "input tags (sequence feature tags): each row must hold exactly max_len 4 ids" in served[width]
        assert f"got] [{width}]" in served[width]



# -- a config.yaml edited after its run trained -------------------------------------------------
def _edit_saved(model_dir: str, edit) -> None:
    path = os.path.join(model_dir, "config.yaml")
    raw = yaml.safe_load(open(path))
    edit(raw)
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)


def _feature(raw: dict, name: str) -> dict:
    return next(spec for spec in raw["features"] if spec["name"] == name)


def test_pfd_export_refuses_a_hand_edited_config_naming_the_keys(run_copy):
    _, model_dir = run_copy

    def edit(raw):
        _feature(raw, "price")["boundaries"][-1] = 90.0
        _feature(raw, "user_id")["hash_buckets"] = 200

    _edit_saved(model_dir, edit)
    before = snapshot(model_dir)
    out = os.path.join(model_dir, "elsewhere")
    proc = _run("-m", "pfd_tf.cli.export", "--model_dir", model_dir, "--out", out)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert (f"pfd-export: error: {model_dir}/config.yaml: edited since its run trained: features.price.boundaries: "
            "[5.0, 10.0, 20.0, 40.0, 80.0] -> [5.0, 10.0, 20.0, 40.0, 90.0]; features.user_id.hash_buckets: "
            "100 -> 200. The checkpoints were trained with the values config.fingerprint.json records") in proc.stderr
    assert not os.path.exists(out) and snapshot(model_dir) == before


def test_an_edit_that_changes_no_value_passes_and_a_resume_records_its_own(run_copy, capsys):
    from pfd_tf import run_dir
    from pfd_tf.config.fingerprint import FINGERPRINT, trained_config

    config, model_dir = run_copy
    assert FINGERPRINT in run_dir.RUN_FILES  # --overwrite removes it with the run
    path = os.path.join(model_dir, "config.yaml")
    with open(path, "a") as f:
        f.write("# a note of mine\n")
    assert trained_config(model_dir).feature("price").boundaries == (5.0, 10.0, 20.0, 40.0, 80.0)
    assert run_task(config, model_dir, ["train.steps=18"]) == 0  # the resume rewrites config.yaml
    assert trained_config(model_dir).train.steps == 18
    with open(os.path.join(model_dir, FINGERPRINT)) as f:
        assert json.load(f)["keys"]["train.steps"] == 18


def test_a_checkpoint_that_does_not_fit_the_config_is_an_export_error(run_copy):
    """A run without a fingerprint (trained before them) edited by hand: the restore says so, no traceback."""
    from pfd_tf.config.fingerprint import FINGERPRINT, trained_config
    from pfd_tf.export import ExportError, restore_student

    _, model_dir = run_copy
    os.remove(os.path.join(model_dir, FINGERPRINT))
    _edit_saved(model_dir, lambda raw: _feature(raw, "user_id").update(hash_buckets=200))
    checkpoint = os.path.join(model_dir, "checkpoints", "ckpt-12")
    with pytest.raises(ExportError, match=rf"{checkpoint}: does not hold the student the config describes "
                                          r"\(Received incompatible tensor with shape \(100, 4\)"):
        restore_student(trained_config(model_dir), checkpoint)


# -- pfd-vocab --out --------------------------------------------------------------------------------
COUNTED = ["--set", "features.device.vocabulary=[]", "--set", "features.device.min_count=1"]


def test_pfd_vocab_refuses_an_out_that_is_a_file(finished, tmp_path):
    world, _ = finished
    out = tmp_path / "vocab"
    out.write_text("mine\n")
    proc = _run("-m", "pfd_tf.cli.vocab", "--config", os.path.join(world, "config.yaml"), "--out", str(out), *COUNTED)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"pfd-vocab: error: --out {out}: is a file, not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr and out.read_text() == "mine\n"


def test_pfd_vocab_refuses_an_out_under_a_file(finished, tmp_path):
    from pfd_tf.config import ConfigError
    from pfd_tf.data.vocab import write_vocabularies

    world, _ = finished
    blocker = tmp_path / "file"
    blocker.write_text("mine\n")
    with pytest.raises(ConfigError, match=f"--out {blocker}/vocab: is under {blocker}, a file, not a directory"):
        write_vocabularies(os.path.join(world, "config.yaml"), str(blocker / "vocab"), COUNTED[1::2])
    assert sorted(os.listdir(tmp_path)) == ["file"]
