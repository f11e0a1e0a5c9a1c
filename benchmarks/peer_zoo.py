"""DeepCTR 0.9.4's side of `benchmarks/peer_baseline.py`: its DNN ranker and its counterparts of pfd_tf's zoo models.

DeepCTR is the optional `peer` extra, never a dependency of pfd_tf: it is
imported inside the functions, after `import pfd_tf` has chosen Keras 2.

`peer_columns` gives DeepCTR one column per student feature with pfd_tf's
table sizes and dims; `peer_dnn` is the DNN ranker; `counterpart` is
DeepCTR's own model function for a pfd_tf zoo model (`--models`), built from
the pfd_tf network config the pfd_tf side trains (`config.student`: cross
layers, CIN sizes, attention sizes, SENET ratio, bilinear type) and its
tower (`model.student_tower`), over the same feature columns; everything
else is DeepCTR's default (ReLU, no batch norm, L2 1e-5 on embeddings and
first-order weights, its initializers and seeds).  Where the two libraries
compose a model differently, the DeepCTR side is made to compose it as
pfd_tf does:

- DCN: pfd_tf's `dcn` is the full-rank cross x_{l+1} = x_0 * (W x_l + b) + x_l
  (tensorflow-recommenders' `Cross`), DeepCTR's `cross_parameterization="matrix"`;
  DeepCTR's default `"vector"` is DCN-v1's rank-one cross.
- DCN and AutoInt: pfd_tf's have no first-order part, so DeepCTR gets no
  linear feature columns (its default adds an LR logit).
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

from pfd_tf._keras import keras
from pfd_tf.config import Config, FeatureKind, NetworkConfig, NumericEncoding
from pfd_tf.features import vocabulary_size

INSTALL_HINT = 'pip install -e ".[peer]"'
L2_REG_EMBEDDING = 1e-5  # DeepCTR's default for every model
TABLE_SCALE, TABLE_SEED = 1e-4, 2020  # SparseFeat's default initializer: RandomNormal(0, 1e-4, seed=2020)


def import_deepctr() -> SimpleNamespace:
    """DeepCTR's building blocks, or exit naming the extra to install.

    Imported here, not at the top: DeepCTR is the `peer` extra, never a
    dependency of pfd_tf.  `import pfd_tf` (through `pfd_tf._keras` above)
    has set TF_USE_LEGACY_KERAS, without which DeepCTR 0.9.4 does not import
    on TensorFlow 2.21.  (Its import also starts a thread that asks PyPI for a
    newer release; offline it prints "Please check the latest version manually".)
    """
    try:
        import deepctr
        from deepctr.feature_column import (SparseFeat, VarLenSparseFeat, build_input_features,
                                            input_from_feature_columns)
        from deepctr.layers.core import DNN, PredictionLayer
        from deepctr.layers.utils import combined_dnn_input
    except ImportError as err:
        sys.exit(f"benchmarks/peer_baseline.py needs DeepCTR 0.9.4 ({err}); install it with: {INSTALL_HINT}")
    return SimpleNamespace(
        version=deepctr.__version__, SparseFeat=SparseFeat, VarLenSparseFeat=VarLenSparseFeat,
        build_input_features=build_input_features, input_from_feature_columns=input_from_feature_columns,
        DNN=DNN, PredictionLayer=PredictionLayer, combined_dnn_input=combined_dnn_input,
    )


def peer_columns(peer: SimpleNamespace, config: Config, independent_tables: bool = False) -> list:
    """DeepCTR feature columns over the student's features, with pfd_tf's table sizes and dims.

    DeepCTR starts every table N(0, 1e-4^2) from one seed (`SparseFeat`'s
    default initializer, seed 2020), so row k of every table starts as the
    same vector, and every run of a model starts from the same weights.
    `independent_tables` keeps the distribution and gives table i the seed
    2020 + i, as pfd_tf draws each table on its own: a second start of
    DeepCTR's, to tell a difference of models from the luck of one start
    (docs/results.md, "Zoo parity": AutoInt+).
    """
    columns = []
    for i, spec in enumerate(config.student_features):
        if spec.kind is FeatureKind.NUMERIC and spec.encoding is NumericEncoding.VALUE:  # `encoding: value`: no ids to share (DeepCTR would take a DenseFeat)
            raise ValueError(f"feature {spec.name!r}: a numeric feature fed as its value; "
                             "this benchmark compares bucketized numeric features only")
        start = {"embeddings_initializer": keras.initializers.RandomNormal(0.0, TABLE_SCALE, seed=TABLE_SEED + i)}
        column = peer.SparseFeat(spec.name, vocabulary_size=vocabulary_size(spec), embedding_dim=spec.dim,
                                 **(start if independent_tables else {}))
        if spec.kind is FeatureKind.SEQUENCE:
            # No length_name: DeepCTR's sequence embedding masks id 0 (mask_zero), pfd_tf's PAD_ID.
            column = peer.VarLenSparseFeat(column, maxlen=spec.max_len, combiner="mean")
        columns.append(column)
    return columns


def peer_dnn(peer: SimpleNamespace, columns, hidden_units) -> tuple[keras.Model, keras.Model, keras.layers.Layer]:
    """DeepCTR's DNN ranker: (model on probabilities, the same model's logit before the bias, its PredictionLayer).

    Built as DeepCTR 0.9.4's WDL and FNN build their deep part, with DeepCTR's
    defaults (seeds included).  The logit model shares every weight; exact AUC
    wants logits, which a float32 sigmoid would tie.
    """
    features = peer.build_input_features(columns)
    embeddings, dense = peer.input_from_feature_columns(features, columns, L2_REG_EMBEDDING, seed=1024)
    hidden = peer.DNN(tuple(hidden_units), seed=1024)(peer.combined_dnn_input(embeddings, dense))
    logit = keras.layers.Dense(1, use_bias=False)(hidden)
    prediction = peer.PredictionLayer("binary")
    inputs = list(features.values())
    return keras.Model(inputs, prediction(logit)), keras.Model(inputs, logit), prediction



MODELS = ("wide_deep", "deepfm", "dcn", "xdeepfm", "autoint", "fibinet")
NAMES = {"dnn": "DNN", "wide_deep": "WDL", "deepfm": "DeepFM", "dcn": "DCN", "xdeepfm": "xDeepFM",
         "autoint": "AutoInt", "fibinet": "FiBiNET"}
BILINEAR = {"field_all": "all", "field_each": "each", "field_interaction": "interaction"}


def counterpart(model: str, columns, network: NetworkConfig, tower) -> keras.Model:
    """DeepCTR's `model` (a pfd_tf zoo name of `MODELS`) on `columns`, sized as `network` and `tower`."""
    from deepctr import models

    units = tuple(int(u) for u in tower)
    if model == "wide_deep":
        return models.WDL(columns, columns, dnn_hidden_units=units)
    if model == "deepfm":
        return models.DeepFM(columns, columns, dnn_hidden_units=units)
    if model == "dcn":
        return models.DCN([], columns, cross_num=network.cross_layers, cross_parameterization="matrix",
                          dnn_hidden_units=units)
    if model == "xdeepfm":
        return models.xDeepFM(columns, columns, dnn_hidden_units=units, cin_layer_size=tuple(network.cin_layers),
                              cin_activation=network.cin_activation)
    if model == "autoint":
        return models.AutoInt([], columns, att_layer_num=network.attention_layers,
                              att_embedding_size=network.attention_dim, att_head_num=network.attention_heads,
                              att_res=network.attention_residual, dnn_hidden_units=units)
    if model == "fibinet":
        return models.FiBiNET(columns, columns, bilinear_type=BILINEAR[network.bilinear],
                              reduction_ratio=network.senet_reduction, dnn_hidden_units=units)
    raise ValueError(f"no DeepCTR counterpart for {model!r} (choose from {', '.join(MODELS)})")


def logit_model(model: keras.Model) -> tuple[keras.Model, keras.layers.Layer]:
    """(the model's logit before its global bias, its PredictionLayer): exact AUC wants logits."""
    from deepctr.layers.core import PredictionLayer

    prediction = next(layer for layer in model.layers if isinstance(layer, PredictionLayer))
    return keras.Model(model.inputs, prediction.input), prediction
