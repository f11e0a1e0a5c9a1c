"""The CTR model zoo: every model usable as a teacher or a student, over embedding tables handed in.

Zhu et al. 2020 (Section 2.1, Eq. (1)-(4)) write the deep CTR models as a
sum of a shallow and a deep logit, phi(x) = phi_shallow(x) + phi_DNN(x);
this package builds those models and their parts, one file per model:

    lr          b + sum_i w_i x_i
    fm          LR + sum_{i<j} <v_i, v_j>
    wide_deep   LR + DNN                                  Eq. (1)
    deepfm      LR + FM term + DNN                        Eq. (2)
    dcn         Dense([Cross(x); DNN(x)]), full-rank      Eq. (3)
    dcn_v2      the same with a low-rank cross
    xdeepfm     LR + CIN + DNN                            Eq. (4)
    autoint     Dense([self-attention(fields); DNN(x)])
    fibinet     LR + DNN(bilinear(SENET(fields)), bilinear(fields))
    dagfm       Dense(pooled node states of a field DAG)   KD-DAGFM

Each model is declared once, in `pfd_tf.models.zoo.entries` (its
parameters and their checks, hidden outputs, input needs, builder), and
registered in `pfd_tf.models.zoo.registry`; the config checks, the
builder (`pfd_tf.models.zoo.builder`) and the docs read that entry.  The
registry loads without TensorFlow (the config layer reads it before
TensorFlow loads), so this package's names are loaded from `builder` on
first use (PEP 562), not when `pfd_tf.models.zoo.registry` is imported.
"""
from __future__ import annotations

import importlib

_FROM_BUILDER = ("NEEDS_FIRST_ORDER", "NEEDS_STACK", "ZooNetwork", "build_linear_tables", "build_network")


def __getattr__(name: str):
    if name in _FROM_BUILDER:
        return getattr(importlib.import_module("pfd_tf.models.zoo.builder"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FROM_BUILDER)
