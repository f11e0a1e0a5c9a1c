"""The dial world's generative claims (pfd_tf.datasets.dial): what the privileged feature knows moves
with the dial and nothing else does; ids appear rows_per_id times; the oracle quantities follow."""
import math

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.datasets import dial, dial_config, dial_world
from pfd_tf.datasets.dial import normal_cdf, oracle_quantities, simulate_dial
from pfd_tf.datasets.dial_world import DialWorld
from pfd_tf.datasets.scenarios import SCENARIOS, WORLDS, world_overrides

ROWS = 40_000


def _world(share: float, **more) -> DialWorld:
    return DialWorld(rows=ROWS, privileged_share=share, **more)


@pytest.fixture(scope="module")
def sims():
    return {share: simulate_dial(_world(share), seed=0, latents=True) for share in (0.0, 0.4, 0.75, 0.97)}


def test_normal_cdf_matches_erfc():
    x = np.linspace(-9, 9, 721)
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert np.max(np.abs(normal_cdf(x) - exact) / exact) < 2e-7


def test_the_dial_moves_the_privileged_column_only(sims):
    """One seed: the regular columns and the labels are the same at every privileged_share."""
    first = sims[0.0]
    for share, cols in sims.items():
        for name in dial_world.DIAL_COLUMNS:
            if name != dial_world.PRIVILEGED:
                assert np.array_equal(cols[name], first[name]), (share, name)
    assert not np.array_equal(sims[0.4][dial_world.PRIVILEGED], first[dial_world.PRIVILEGED])


def test_label_is_the_utility_threshold_at_the_purchase_rate(sims):
    cols = sims[0.0]
    assert np.array_equal(cols["purchase"], (cols["utility"] + cols["eta"] > 0).astype(np.int64))
    assert abs(cols["purchase"].mean() - 0.2) < 0.01
    assert abs(normal_cdf(cols["utility"]).mean() - 0.2) < 1e-3  # the base is solved on P(y | x)


def test_at_zero_the_privileged_feature_is_independent_of_the_label_given_x(sims):
    """rho = 0: engagement is xi, a draw of its own: uncorrelated with the label inside every quarter of
    P(y | x) and with the utility (within 4 standard errors); at rho = 0.4 it is correlated in each."""
    def correlations(cols):
        s, y, p = cols["engagement"], cols["purchase"], normal_cdf(cols["utility"])
        quarter = np.digitize(p, np.quantile(p, [0.25, 0.5, 0.75]))
        return [(np.corrcoef(s[quarter == q], y[quarter == q])[0, 1], 4 / math.sqrt(np.sum(quarter == q)))
                for q in range(4)]

    assert all(abs(r) < limit for r, limit in correlations(sims[0.0]))
    assert all(r > 5 * limit for r, limit in correlations(sims[0.4]))
    zero = sims[0.0]
    assert abs(np.corrcoef(zero["engagement"], zero["utility"])[0, 1]) < 4 / math.sqrt(ROWS)
    assert abs(zero["engagement"].std() - 1) < 0.02


def test_the_oracle_teacher_rises_with_the_dial_and_the_student_does_not_move(sims):
    quantities = [oracle_quantities(sims[s], _world(s), test_only=False) for s in sorted(sims)]
    teacher = [q["teacher_auc"] for q in quantities]
    left = [q["noise_left"] for q in quantities]
    assert all(a < b for a, b in zip(teacher, teacher[1:])), teacher
    assert all(a > b for a, b in zip(left, left[1:])), left
    assert len({q["student_auc"] for q in quantities}) == 1  # the student's problem is the same
    zero, top = quantities[0], quantities[-1]
    assert zero["teacher_auc"] == pytest.approx(zero["student_auc"], abs=1e-12)
    assert zero["noise_left"] == pytest.approx(1.0) and zero["soft_label_noise"] == pytest.approx(0.0, abs=1e-12)
    assert abs(zero["lupi_auc"] - 0.5) < 0.02
    assert top["teacher_auc"] > 0.99 and top["noise_left"] < 0.25  # the top of the dial is near a leak
    assert 0.7 < zero["student_auc"] < 0.9


def test_the_soft_label_noise_is_the_law_of_total_variance(sims):
    """E[Var(T | x)] = E[p(1 - p)] - E[T(1 - T)]: measured as the mean squared gap T - p, which has
    mean zero given x (the teacher is calibrated), it matches the formula the oracle reports."""
    cols, world = sims[0.75], _world(0.75)
    q = oracle_quantities(cols, world, test_only=False)
    p = normal_cdf(cols["utility"])
    t = normal_cdf((cols["utility"] + math.sqrt(0.75) * cols["engagement"]) / math.sqrt(0.25))
    assert np.mean((t - p) ** 2) == pytest.approx(q["soft_label_noise"], rel=0.03)
    assert abs(np.mean(t - p)) < 4 * math.sqrt(q["soft_label_noise"] / ROWS)  # 4 standard errors


@pytest.mark.parametrize("per_id", [40.0, 5.0])
def test_rows_per_id_follow_the_size_knob(per_id):
    world = DialWorld(rows=ROWS, rows_per_id=per_id)
    cols = simulate_dial(world, seed=1)
    assert world.n_ids == round(ROWS / per_id)
    for name in ("user_id", "item_id"):
        counts = np.bincount(cols[name], minlength=world.n_ids)
        assert len(counts) == world.n_ids
        assert counts.mean() == pytest.approx(per_id)
        assert counts.var() == pytest.approx(per_id, rel=0.15)  # uniform draws: Poisson counts


def test_knobs_are_validated_and_reach_the_world_by_name():
    with pytest.raises(ValueError, match="privileged_share"):
        simulate_dial(_world(1.5), seed=0)
    with pytest.raises(ValueError, match="rows_per_id"):
        simulate_dial(DialWorld(rows=ROWS, rows_per_id=0), seed=0)
    assert SCENARIOS["dial"] is dial.generate_dial and WORLDS["dial"] is DialWorld
    assert world_overrides("dial", ["privileged_share=0.9", "rows_per_id=5"]) == {
        "privileged_share": 0.9, "rows_per_id": 5.0}
    with pytest.raises(ValueError, match="no field 'share'"):
        world_overrides("dial", ["share=0.9"])


def test_settings_are_fixed_in_range():
    assert len(dial_world.DIAL_SETTINGS) >= 5 and dial_world.DIAL_SETTINGS[0] == 0.0
    assert list(dial_world.DIAL_SETTINGS) == sorted(dial_world.DIAL_SETTINGS)
    assert all(0 <= s < 1 for s in dial_world.DIAL_SETTINGS)
    assert len(dial_world.ROWS_PER_ID_SETTINGS) == 2


def test_the_scenario_writes_a_world_whose_config_loads(tmp_path):
    """What `pfd-data --scenario dial --rows 4000 --seed 3 --world ...` calls (in process: the CLI's
    flags are tested on the CVR world in test_synthetic.py)."""
    out = tmp_path / "dial"
    overrides = world_overrides("dial", ["privileged_share=0.9", "rows_per_id=5"])
    SCENARIOS["dial"](str(out), rows=4000, seed=3, days=8, **overrides)
    config = config_lib.load(str(out / "config.yaml"))
    assert config.distill.mode is config_lib.Mode.PFD
    assert config.train.optimizer is config_lib.Optimizer.ADAM
    train_rows = int(np.sum(simulate_dial(DialWorld(rows=4000, rows_per_id=5), seed=3)["day"] < 7))
    assert config.train.batch_size == train_rows // dial_config.MIN_STEPS_PER_EPOCH < 1024
    assert [f.name for f in config.privileged_features] == ["engagement"]
    with open(out / "config.yaml", encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    assert {f["name"]: f.get("hash_buckets") for f in raw["features"]}["user_id"] == 2 * 800
    cols = simulate_dial(DialWorld(rows=4000, privileged_share=0.9, rows_per_id=5), seed=3)
    with open(out / "test" / "day-07.csv", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].split(",") == list(dial_world.DIAL_COLUMNS)
    test = cols["day"] == 7
    assert [line.split(",")[-1] for line in lines[1:]] == cols["purchase"][test].astype(str).tolist()
    assert [float(line.split(",")[6]) for line in lines[1:]] == cols["engagement"][test].tolist()
