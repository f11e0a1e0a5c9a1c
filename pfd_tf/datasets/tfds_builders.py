"""TFDS builders for the synthetic PFD worlds of :mod:`pfd_tf.datasets.cvr`.

The same simulated click logs as ``pfd-data`` writes to CSV, as a TensorFlow
Datasets dataset: import this module, then

    tfds.load("pfd_synthetic_cvr/small", data_dir=...)

builds it offline (nothing is downloaded: the examples come from
:func:`pfd_tf.datasets.cvr.simulate_cvr`). Splits follow the paper's
protocol (Section 5): ``train`` holds all days but the last, ``test`` the last
day. Each example has every CSV column: the regular features, the privileged
post-click features (dwell time, add-to-cart, ...; Section 3, Figure 3), the
``day`` and the ``purchase`` label.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from pfd_tf.datasets.cvr import simulate_cvr
from pfd_tf.datasets.cvr_world import CVR_COLUMNS, CVR_FEATURES, LABEL, CvrWorld
from pfd_tf.datasets.writer import DAY, Column

_CITATION = """\
@inproceedings{xu2020privileged,
  title={Privileged Features Distillation at Taobao Recommendations},
  author={Xu, Chen and Li, Quan and Ge, Junfeng and Gao, Jinyang and Yang, Xiaoyong
          and Pei, Changhua and Sun, Fei and Wu, Jian and Sun, Hanxiao and Ou, Wenwu},
  booktitle={KDD},
  year={2020}
}
"""
_DTYPES = {"int": np.int64, "float": np.float32}


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """Size and seed of one synthetic world (the seed is fixed per config)."""

    rows: int = 200_000
    seed: int = 0
    days: int = 8


def _feature(col: Column):
    return tfds.features.Text() if col.dtype == "str" else _DTYPES[col.dtype]


class PfdSyntheticCvr(tfds.core.GeneratorBasedBuilder):
    """Synthetic CVR clicks with privileged post-click features (label: purchase)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: CvrWorld defaults, train = days 0..6, test = day 7.",
    }
    BUILDER_CONFIGS = [
        SyntheticConfig(name="tiny", rows=2_000, description="2k clicks, for tests."),
        SyntheticConfig(name="small", rows=20_000, description="20k clicks."),
        SyntheticConfig(name="default", rows=200_000, description="200k clicks."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS 4.9.10 resolves this through `importlib_resources`, which it
        # only requires on Python < 3.9 (tensorflow/datasets#11212).
        return epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {c.name: _feature(c) for c in CVR_FEATURES}
        features[DAY] = np.int64
        features[LABEL] = tfds.features.ClassLabel(names=["no_purchase", "purchase"])
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(features),
            homepage="https://arxiv.org/abs/1907.05171",
            citation=_CITATION,
        )

    def _world(self) -> CvrWorld:
        return CvrWorld.for_rows(self.builder_config.rows, self.builder_config.days)

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the data is simulated.
        world = self._world()
        columns = simulate_cvr(world, self.builder_config.seed)
        test = columns[DAY] == world.days - 1
        return {
            "train": self._generate_examples(columns, np.flatnonzero(~test)),
            "test": self._generate_examples(columns, np.flatnonzero(test)),
        }

    def _generate_examples(self, columns, rows):
        """Yields (row index in the simulated log, example)."""
        values = {k: columns[k][rows].tolist() for k in CVR_COLUMNS}
        for i, row in enumerate(rows.tolist()):
            yield row, {k: v[i] for k, v in values.items()}
