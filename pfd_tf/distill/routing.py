"""Gradient routing, in one place: which variable groups each loss may move.

Every trainable variable of a distiller falls in exactly one group, by which
networks read it:

- `student`: read by the (served) student only (its tower, its private
  tables); `student/<name>`: read by that other student only;
- `shared`: read by a student and at least one co-trained teacher (the
  tables of Share&Sync, Section 4 of the PFD paper);
- `students_shared`: read by several students but no teacher;
- `teacher/<name>`: read by that teacher only;
- `teachers_shared`: read by several teachers but not the student;
- `hint`: a hint term's regression matrix W (Eq. (9) of Zhu et al. 2020);
- `gate`: the teacher gating network (Eq. (11)).

A frozen (pre-trained) teacher has no trainable variables, so it is in no
group and nothing moves it.  The one thing that enforces the routing is
`detach`: every teacher output a student-side term sees passes through its
`stop_gradient` (Algorithm 1, line 9 of the PFD paper: "No distillation loss"
back into the teacher; the co-train scheme's "unidirectional" distillation,
Section 3.4.1 of Zhu et al.).  Each loss then declares the groups it may
move (`Distiller.loss_groups`), and `tests/distill/test_routing.py` checks every loss
against every group for every model of the zoo.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import tf
from pfd_tf.models.network import NetworkOutput
from pfd_tf.names import SERVED

STUDENT = SERVED  # the served student's own group is named after it
SHARED = "shared"
STUDENTS_SHARED = "students_shared"
TEACHERS_SHARED = "teachers_shared"
HINT = "hint"
GATE = "gate"


def teacher_group(name: str) -> str:
    return f"teacher/{name}"


def student_group(name: str) -> str:
    """`student` for the served student (named `student`), `student/<name>` for any other."""
    return STUDENT if name == STUDENT else f"student/{name}"


def detach(output: NetworkOutput) -> NetworkOutput:
    """A teacher's output as the student's terms see it: no gradient flows back through it."""
    return NetworkOutput(tf.stop_gradient(output.logits),
                         {name: tf.stop_gradient(value) for name, value in output.hidden.items()},
                         {task: tf.stop_gradient(value) for task, value in output.by_task.items()})


def variable_groups(students: Mapping[str, object], teachers: Mapping[str, object], hint_layers=(),
                    gate=None) -> dict[str, list]:
    """Group name -> the trainable variables in it (each variable in exactly one group).

    `students`, `teachers`: name -> network; only trainable networks' variables count.
    """
    owners: dict = {}
    variables: dict = {}

    def own(owner, network_variables):
        for variable in network_variables:
            owners.setdefault(variable.ref(), set()).add(owner)
            variables[variable.ref()] = variable

    for name, student in students.items():
        own(student_group(name), student.trainable_variables)
    for name, teacher in teachers.items():
        own(teacher_group(name), teacher.trainable_variables)
    for layer in hint_layers:
        own(HINT, layer.trainable_variables)
    if gate is not None:
        own(GATE, gate.trainable_variables)
    groups: dict[str, list] = {}
    student_groups = {student_group(name) for name in students}
    for ref, who in owners.items():
        read_by_students = who & student_groups
        if len(who) == 1:
            group = next(iter(who))
        elif read_by_students and any(owner.startswith("teacher/") for owner in who):
            group = SHARED
        elif read_by_students:
            group = STUDENTS_SHARED
        else:
            group = TEACHERS_SHARED
        groups.setdefault(group, []).append(variables[ref])
    return groups


def teacher_loss_groups(name: str) -> frozenset[str]:
    """What a co-trained teacher's own loss L_T (Eq. (6)) may move."""
    return frozenset({teacher_group(name), SHARED, TEACHERS_SHARED})


def student_loss_groups(name: str) -> frozenset[str]:
    """What a student's own loss and its distillation terms (Eq. (7)) may move: never a teacher, nor another
    student's own variables."""
    return frozenset({student_group(name), SHARED, STUDENTS_SHARED})
