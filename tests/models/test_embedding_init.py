"""`model.embedding_init` and `model.embedding_init_scale`: how every embedding table starts.

The default is Keras' U(-0.05, 0.05); `normal` at 0.0001 is DeepCTR's
N(0, 0.0001^2).  Every embedding table a run builds starts so: the shared
tables, the tables a teacher adds for its privileged features, a teacher's
own tables (`sharing: independent`); the first-order (linear) tables of the
zoo models stay at zero either way.
"""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, EmbeddingInit
from pfd_tf.distill.build import build_distiller


def _tables(distiller) -> dict[str, np.ndarray]:
    """Every embedding table's weights by variable name (one-wide linear tables apart, under `linear`)."""
    return {v.name: v.numpy() for v in distiller.trainable_variables if "embedding" in v.name or "linear" in v.name}


@pytest.mark.parametrize("sharing", ["shared", "independent"])
def test_every_table_starts_as_the_config_says(tiny_config_path, sharing):
    default = config_lib.load(tiny_config_path, [f"model.sharing={sharing}"])
    assert default.model.embedding_init is EmbeddingInit.UNIFORM and default.model.embedding_init_scale == 0.05
    normal = config_lib.load(tiny_config_path, [f"model.sharing={sharing}", "model.embedding_init=normal",
                                                "model.embedding_init_scale=0.0001"])
    wide = config_lib.load(tiny_config_path, [f"model.sharing={sharing}", "model.embedding_init_scale=0.2"])
    names = set()
    for config, std, bound in ((default, 0.05 / 3 ** 0.5, 0.05), (wide, 0.2 / 3 ** 0.5, 0.2), (normal, 1e-4, 6e-4)):
        tables = {name: w for name, w in _tables(build_distiller(config)).items() if "linear" not in name}
        names |= set(tables)
        for name, weights in tables.items():
            assert np.abs(weights).max() <= bound, (config.model.embedding_init, name)
        values = np.concatenate([w.ravel() for w in tables.values()])  # ~2,000 values together
        assert 0.9 * std < values.std() < 1.1 * std, config.model
        shapes = {}
        for name, weights in tables.items():  # each table draws its own values
            shapes.setdefault(weights.shape, []).append(weights)
        assert all(not np.array_equal(a, b) for same in shapes.values() for a, b in zip(same, same[1:]))
    # The privileged features' tables (the teacher's) are among them, and with `independent` the teacher's own.
    assert any("dwell" in n for n in names) and any("cart" in n for n in names)
    if sharing == "independent":
        assert any(n.startswith("teacher") for n in names), sorted(names)


def test_first_order_tables_stay_at_zero(tiny_config_path):
    config = config_lib.load(tiny_config_path, ["distill.mode=baseline", "student.model=wide_deep",
                                                "model.embedding_init=normal"])
    tables = _tables(build_distiller(config))
    linear = [w for name, w in tables.items() if "linear" in name]
    assert linear and all(not w.any() for w in linear)
    assert all(w.any() for name, w in tables.items() if "linear" not in name)


def test_bad_values_name_the_key(tiny_config_path):
    with pytest.raises(ConfigError, match=r"model\.embedding_init: unknown value 'xavier'"):
        config_lib.load(tiny_config_path, ["model.embedding_init=xavier"])
    for bad in ("0", "-0.1"):
        with pytest.raises(ConfigError, match=r"model\.embedding_init_scale: must be a positive number"):
            config_lib.load(tiny_config_path, [f"model.embedding_init_scale={bad}"])
    with pytest.raises(ConfigError, match=r"model\.embedding_init_scale: expected a finite number"):
        config_lib.load(tiny_config_path, ["model.embedding_init_scale=.inf"])
