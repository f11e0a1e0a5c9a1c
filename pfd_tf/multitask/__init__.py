"""Multi-task pieces: backbones, task towers, the PFD paper's MTL baseline and CrossDistil's losses.

A multi-task backbone turns the shared feature vector `[B, d]` (what a
network's `Fields.vector()` gives) into one representation per task,
`{task: [B, h]}`; `towers.TaskTowers` puts an `MLPTower` on each and
`towers.MultiTaskNetwork` joins the two.  The backbones, one module each:

- `shared_bottom.SharedBottom`  (Caruana 1997; hard parameter sharing)
- `mmoe.MMoE`                   (Ma et al. 2018, multi-gate mixture of experts)
- `ple.PLE`                     (Tang et al. 2020, progressive layered extraction; CGC at one level)
- `cross_stitch.CrossStitch`    (Misra et al. 2016)

`pfd_tf.models.zoo.backbone` makes each a network of the zoo (`model:
shared_bottom | mmoe | ple | cross_stitch` for a teacher or a student).

The PFD paper's MTL baseline (Section 5.3) is a config of the zoo's `shared_bottom`
(`pfd_tf.datasets.mtl_baseline_config`); CrossDistil
("Cross-Task Knowledge Distillation in Multi-Task Recommendation", AAAI
2022) is `quadruplets` (Eq. (2), (4)), `calibration` (Eq. (8), (9) and the
bi-level variable groups of Algorithm 1) and `crossdistil` (Eq. (5)-(7),
(10)); `pfd_tf.distill.crossdistil_part` wires them into the Distiller
(`distill.crossdistil`).  Import each from its module.
"""
