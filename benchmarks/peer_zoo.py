"""DeepCTR 0.9.4's counterparts of pfd_tf's zoo models, for `benchmarks/peer_baseline.py --models`.

Each is DeepCTR's own model function, built from the pfd_tf network config
the pfd_tf side trains (`config.student`: cross layers, CIN sizes, attention
sizes, SENET ratio, bilinear type) and its tower (`model.student_tower`),
over the same feature columns; everything else is DeepCTR's default (ReLU,
no batch norm, L2 1e-5 on embeddings and first-order weights, its
initializers and seeds).  Where the two libraries compose a model
differently, the DeepCTR side is made to compose it as pfd_tf does, and the
docstring of `build` says so:

- DCN: pfd_tf's `dcn` is the full-rank cross x_{l+1} = x_0 * (W x_l + b) + x_l
  (tensorflow-recommenders' `Cross`), DeepCTR's `cross_parameterization="matrix"`;
  DeepCTR's default `"vector"` is DCN-v1's rank-one cross.
- DCN and AutoInt: pfd_tf's have no first-order part, so DeepCTR gets no
  linear feature columns (its default adds an LR logit).
"""
from __future__ import annotations

from pfd_tf._keras import keras
from pfd_tf.config import NetworkConfig

MODELS = ("wide_deep", "deepfm", "dcn", "xdeepfm", "autoint", "fibinet")
NAMES = {"dnn": "DNN", "wide_deep": "WDL", "deepfm": "DeepFM", "dcn": "DCN", "xdeepfm": "xDeepFM",
         "autoint": "AutoInt", "fibinet": "FiBiNET"}
BILINEAR = {"field_all": "all", "field_each": "each", "field_interaction": "interaction"}


def build(model: str, columns, network: NetworkConfig, tower) -> keras.Model:
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
