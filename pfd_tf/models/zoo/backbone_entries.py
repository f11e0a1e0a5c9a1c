"""The registry entries of the multi-task backbones (`pfd_tf.models.zoo.backbone`), without TensorFlow.

Each has a tower per task of `tasks:` (its `tower`, the DNN part whose
`deep_i` and `final` are the served task's tower's) over the backbone's
`representation` of that task; their keys: `expert_units` (every backbone's
MLP widths), `experts` (MMoE's experts, PLE's per task), `shared_experts`
and `levels` (PLE).
"""
from __future__ import annotations

from pfd_tf.models.zoo.entries import positive
from pfd_tf.models.zoo.registry import Param, ZooEntry, register


def _widths(units) -> str | None:
    return None if units and all(u > 0 for u in units) else "list at least one positive hidden width"


EXPERT_UNITS = Param("expert_units", (_widths,))
EXPERTS = Param("experts", (positive("the experts"),))
HIDDEN = ("representation", "final")

register(ZooEntry("shared_bottom", "pfd_tf.models.zoo.backbone:make_shared_bottom", (EXPERT_UNITS,),
                  hidden_outputs=HIDDEN, multi_task=True,
                  summary="a tower per task over one shared bottom MLP (Caruana 1997)"))
register(ZooEntry("mmoe", "pfd_tf.models.zoo.backbone:make_mmoe", (EXPERTS, EXPERT_UNITS),
                  hidden_outputs=HIDDEN, multi_task=True,
                  summary="a tower per task over experts mixed by its own gate (Ma et al. 2018)"))
register(ZooEntry("ple", "pfd_tf.models.zoo.backbone:make_ple",
                  (EXPERTS, Param("shared_experts", (positive("the shared experts per level"),)),
                   Param("levels", (positive("the extraction levels"),)), EXPERT_UNITS),
                  hidden_outputs=HIDDEN, multi_task=True,
                  summary="a tower per task over task and shared experts, `levels` levels (Tang et al. 2020)"))
register(ZooEntry("cross_stitch", "pfd_tf.models.zoo.backbone:make_cross_stitch", (EXPERT_UNITS,),
                  hidden_outputs=HIDDEN, multi_task=True,
                  summary="a tower per task over one MLP column per task, stitched per layer (Misra et al. 2016)"))
