"""The registry entry of every model of the zoo (`pfd_tf.models.zoo.registry`), without TensorFlow.

Each entry says which `NetworkConfig` keys the model reads and how the
config checks them at load (the messages `pfd_tf.config.networks` prefixes
with the key), its hidden outputs, what inputs it needs, and where its
builder lives.  The builders are in the model files named by `build`.
"""
from __future__ import annotations

from pfd_tf.models.zoo.registry import Param, ZooEntry, register

BILINEAR = ("field_all", "field_each", "field_interaction")
CIN_ACTIVATIONS = ("relu", "linear")
DAGFM_TYPES = ("inner", "outer")


def positive(why: str = ""):
    """A check: the value must be > 0 (`why` is added in parentheses)."""
    message = "must be positive" + (f" ({why})" if why else "")
    return lambda value: None if value > 0 else message


def one_of(choices: tuple[str, ...]):
    return lambda value: None if value in choices else (
        f"unknown value {value!r} (choose one of: {', '.join(choices)})")


def _cin_positive(layers) -> str | None:
    return None if layers and all(u > 0 for u in layers) else "list positive feature-map counts"


def _cin_even(layers) -> str | None:
    if any(size % 2 for size in layers[:-1]):
        return ("every layer but the last feeds half its maps on (split-half, as xDeepFM), so needs an even "
                f"count; got {list(layers)}")
    return None


CROSS_LAYERS = Param("cross_layers", (positive(),))

register(ZooEntry("lr", "pfd_tf.models.zoo.lr:make_body", dnn_part=False, needs_first_order=True,
                  summary="b + sum_i w_i x_i"))
register(ZooEntry("fm", "pfd_tf.models.zoo.fm:make_body", hidden_outputs=("fm", "final"), dnn_part=False,
                  needs_stack=True, needs_first_order=True, summary="LR + sum_{i<j} <v_i, v_j>"))
register(ZooEntry("dnn", "", summary="an MLP over the concatenated fields (pfd_tf.models.ranker.Ranker)"))
register(ZooEntry("wide_deep", "pfd_tf.models.zoo.wide_deep:make_body", needs_first_order=True,
                  summary="LR + DNN, Eq. (1)"))
register(ZooEntry("deepfm", "pfd_tf.models.zoo.deepfm:make_body", hidden_outputs=("fm", "final"),
                  needs_stack=True, needs_first_order=True, summary="LR + FM term + DNN, Eq. (2)"))
register(ZooEntry("dcn", "pfd_tf.models.zoo.dcn:make_body", (CROSS_LAYERS,), hidden_outputs=("cross", "final"),
                  summary="Dense([Cross(x); DNN(x)]), full-rank, Eq. (3)"))
register(ZooEntry("dcn_v2", "pfd_tf.models.zoo.dcn:make_low_rank_body",
                  (CROSS_LAYERS, Param("cross_rank", (positive("the low-rank projection's size"),))),
                  hidden_outputs=("cross", "final"), summary="the same with a low-rank cross"))
# cin_activation's check sits between cin_layers' two, the order the config has always reported them in.
register(ZooEntry("xdeepfm", "pfd_tf.models.zoo.xdeepfm:make_body",
                  (Param("cin_layers", (_cin_positive,)), Param("cin_activation", (one_of(CIN_ACTIVATIONS),)),
                   Param("cin_layers", (_cin_even,))),
                  hidden_outputs=("cin", "final"), needs_stack=True, needs_first_order=True,
                  summary="LR + CIN + DNN, Eq. (4)"))
register(ZooEntry("autoint", "pfd_tf.models.zoo.autoint:make_body",
                  (Param("attention_layers", (positive(),)), Param("attention_heads", (positive(),)),
                   Param("attention_dim", (positive(),)), Param("attention_residual")),
                  hidden_outputs=("attention", "final"), needs_stack=True,
                  summary="Dense([self-attention(fields); DNN(x)])"))
register(ZooEntry("fibinet", "pfd_tf.models.zoo.fibinet:make_body",
                  (Param("senet_reduction", (positive(),)), Param("bilinear", (one_of(BILINEAR),))),
                  hidden_outputs=("senet", "bilinear", "final"), needs_stack=True, needs_first_order=True,
                  summary="LR + DNN(bilinear(SENET(fields)), bilinear(fields))"))
register(ZooEntry("two_tower", "", hidden_outputs=("user", "item", "final"), dnn_part=False,
                  summary="user tower . item tower (pfd_tf.models.two_tower.TwoTowerRanker), PFD's Eq. (3)"))
register(ZooEntry("dagfm", "pfd_tf.models.zoo.dagfm:make_body",
                  (Param("dagfm_type", (one_of(DAGFM_TYPES),)),
                   Param("dagfm_layers", (positive("the propagation layers"),))),
                  hidden_outputs=("dagfm", "final"), dnn_part=False, needs_stack=True,
                  summary="Dense(pooled node states of a field DAG), KD-DAGFM"))

from pfd_tf.models.zoo import backbone_entries  # noqa: E402,F401  (the multi-task backbones register there)
