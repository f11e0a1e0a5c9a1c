"""The `config.yaml` the CTR world writes: the CVR world's sections with CTR's label, sequence length,
count boundaries, rate, length and its two-tower model section (Section 5.2 of the PFD paper).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pfd_tf.datasets.ctr_world import COUNT_FEATURES, CTR_COLUMNS, CTR_FEATURES, LABEL, CtrWorld
from pfd_tf.datasets.cvr_world import cvr_hash_buckets
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, as_strings, count_boundaries, feature_config, write_days

BEHAVIOURS_READ = 20
"""The last behaviours the written config's encoder reads (``max_len`` of the
``hist_*`` features).  The data hold k = 50 as in the paper, but on a 2-core
CPU self-attention over 50 behaviours is most of a training step
(``benchmarks/step_cost.py``: baseline step on a fixed batch of 1024, 122 ms
reading 50, 50 ms reading 20);
``--set features.hist_item_id.max_len=50`` (and the other ``hist_*``) reads all."""
EPOCHS = 1
"""Passes over the train days: one, as in the paper (Section 5.1); the world is
sized to be big enough for it (``DEFAULT_ROWS``), and a multi-epoch run on a
smaller one lets the DNN teachers memorise ids (measured on 200,000 rows, 4
epochs: PFD+MD teacher AUC 0.80 on the train days, 0.72 held out)."""
LEARNING_RATE = 1.6
"""Adagrad's peak rate of the written config (which trains PFD), chosen by
``benchmarks/compare_methods.py --scenario ctr --modes baseline,pfd --rates 0.8,1.6,3.2,6.4``
on the validation split of the validation world (seed 100), towers without
normalization: student AUC, baseline / PFD, 0.8480 / 0.8479 at 0.8,
0.8504 / 0.8481 at 1.6, 0.8500 / 0.8386 at 3.2, 0.8273 / 0.8167 at 6.4.  One
epoch of ~510 steps must learn ~24,000 user and item embeddings from ~21
impressions each, so the rate matters; a rate too low for the baseline makes
any co-trained teacher look useful, because the teacher's loss also trains
the shared tables: extra learning rate, not distillation."""
TEACHER_NORMALIZATION = "batch"
"""The normalization of the DNN teachers' towers (``model.teacher_normalization``; the
students' and a two-tower teacher's towers have none).  At ``LEARNING_RATE`` an
unnormalized MLP teacher diverges: its logit grows with the scale of every layer,
where the two-tower student's l2-normalized towers are blind to that scale.  PFD+MD
on the validation world (seed 100), held-out student / teacher AUC, baseline
student 0.8532: teacher towers without normalization 0.7497 / 0.5740 (the teacher
diverged, and moved the tables it shares with the student), layer 0.8466 / 0.9047,
batch 0.8527 / 0.9150.  On worlds 0-2 it removes the loss on worlds 0 and 1; world 2 keeps
one of 0.019 that Share&Sync itself causes (docs/results.md, "Why PFD+MD hurt the
two-tower student")."""


def ctr_hash_buckets(world: CtrWorld) -> dict[str, int]:
    """Hash bucket counts (~2x the id space) of the CTR id-like columns."""
    buckets = cvr_hash_buckets(world)  # user_id, item_id, category_id, shop_id
    buckets.pop("recent_categories", None)
    buckets.update(hist_item_id=buckets["item_id"], hist_category_id=buckets["category_id"],
                   hist_shop_id=buckets["shop_id"])
    return buckets


MODEL = {
    # The coarse-grained ranker of Section 5.2: a two-tower inner-product student whose
    # user side encodes the behaviour sequence by self-attention (Section 5.1).
    "architecture": "two_tower",
    "user_tower": [512, 256, 128],
    "item_tower": [512, 256, 128],
    "inner_product_scale": 5.0,
    "behaviour_items": ["hist_item_id", "hist_category_id", "hist_shop_id"],
    "behaviour_side": ["hist_age_bucket", "hist_dwell_bucket", "hist_type"],
    # The paper's 4 heads, at 8 dims each instead of 32: on a 2-core CPU, 4 x 32 heads over
    # 50 behaviours cost ~540 ms per step of 1024, 4 x 8 ~175 ms (measured with a fixed batch).
    "attention_heads": 4,
    "attention_head_dim": 8,
    "sharing": "shared",
    # Share*&Sync (Table 7): the student gets its own user id embedding.
    "student_private_features": ["user_id"],
    "student_tower": [512, 256, 128],
    "teacher_tower": [512, 256, 128],
    # The paper's CTR teacher for LUPI, MD and PFD+MD is a 3-layer MLP (Section 5.2).
    "big_teacher_tower": [512, 256, 128],
    # ...with batch normalization (the paper's Dense -> BN -> LeakyReLU, Section 5.1), where the two-tower
    # student's towers have none: see TEACHER_NORMALIZATION.
    "teacher_normalization": TEACHER_NORMALIZATION,
    # ...and here it also crosses the candidate with the behaviour sequence (target attention),
    # as DNN rankers do and a two-tower model cannot; [] gives the paper's plain MLP.
    "teacher_target_features": ["item_id", "category_id", "shop_id"],
}


def ctr_config(columns: Mapping[str, np.ndarray], world: CtrWorld, seed: int) -> dict:
    """The config.yaml of a simulated log: the CVR world's sections with CTR's label,
    sequence length, count boundaries and two-tower model section."""
    train = columns[DAY] < world.days - 1
    buckets = ctr_hash_buckets(world)
    features = []
    for col in CTR_FEATURES:
        values = columns[col.name][train]
        entry = feature_config(col, buckets.get(col.name), values,
                               BEHAVIOURS_READ if col.kind == "sequence" else None)
        if col.name in COUNT_FEATURES:
            entry["boundaries"] = count_boundaries(values)
        features.append(entry)
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["data"]["label"] = LABEL
    config["model"] = dict(MODEL)
    return config


def write_ctr_dataset(columns: Mapping[str, np.ndarray], world: CtrWorld, seed: int,
                      out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last day)
    and ``config.yaml``; returns the config path. Rows must be sorted by day."""
    by_name = {c.name: c for c in CTR_FEATURES}
    names = list(CTR_COLUMNS)
    text = [columns[k].tolist() if columns[k].dtype == object
            else as_strings(by_name.get(k), columns[k]) for k in names]
    lines = [",".join(r) for r in zip(*text)]
    header = ",".join(names)
    return write_days(out_dir, header, lines, columns[DAY], world.days, ctr_config(columns, world, seed))
