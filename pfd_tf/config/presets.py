"""The PFD paper's five modes as presets: each stands for a `teachers:` list of at most one teacher.

`baseline` has none (the student alone); `lupi`, `md`, `pfd` and `pfd_md` one teacher named `teacher`, a DNN
(two towers for a two-tower `pfd`) over the privileged features (LUPI, Eq. (2)), the regular ones (MD,
Eq. (1)) or all of them (PFD, Eq. (5); Table 4 of the PFD paper), with `model.teacher_tower` or, for md and
pfd_md, `model.big_teacher_tower`; `distill.teacher_checkpoint` its checkpoint (Ind&Async).  A config's
`teachers:` list (mode `teachers`) is the general form these expand into.
"""
from __future__ import annotations

from pfd_tf.config.distill import DistillConfig, Mode
from pfd_tf.config.model import Architecture, ModelConfig
from pfd_tf.names import PRESET_TEACHER
from pfd_tf.config.zoo import FeatureView, TeacherConfig, ZooModel


def preset_tower(distill: DistillConfig, model: ModelConfig) -> tuple[int, ...]:
    """The preset teacher's tower: `model.big_teacher_tower` for md and pfd_md, else `model.teacher_tower`."""
    if distill.mode in (Mode.MD, Mode.PFD_MD):
        return model.big_teacher_tower
    return model.teacher_tower


def preset_teachers(distill: DistillConfig, model: ModelConfig) -> tuple[TeacherConfig, ...]:
    """The teachers `distill.mode` stands for (none for `baseline`; not called for `teachers`)."""
    mode = distill.mode
    if mode is Mode.BASELINE:
        return ()
    view = {Mode.LUPI: FeatureView.PRIVILEGED, Mode.MD: FeatureView.REGULAR}.get(mode, FeatureView.ALL)
    two_tower = model.architecture is Architecture.TWO_TOWER and mode is Mode.PFD
    return (TeacherConfig(name=PRESET_TEACHER, model=ZooModel.TWO_TOWER if two_tower else ZooModel.DNN,
                          tower=preset_tower(distill, model), features=view, checkpoint=distill.teacher_checkpoint),)
