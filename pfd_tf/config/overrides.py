"""`--set a.b=value` overrides on a parsed YAML config, before it is built: list entries by index or by name
(`features.user_id.dim=32`), and keys that say one thing two ways (`train.steps` or `train.epochs`, `teachers`
or `distill.mode`, `tasks` or `data.label`), where overriding one drops the file's other (`PARTNERS`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

from pfd_tf.config.errors import ConfigError


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Returns a copy of `raw` with each `a.b=value` applied (value parsed as YAML).

    List items are addressed by index or, for `features`, by name:
    `features.user_id.dim=32`.  An override of `train.steps`,
    `train.warmup_steps` or `distill.swap_step` replaces the file's
    `train.epochs`, `train.warmup_fraction` or `distill.swap_fraction`
    (`PARTNERS`), and the other way round; likewise `teachers` and
    `distill.mode`, `tasks` and `data.label`.  `student.x` is `students.0.x` where the config lists `students:`.
    """
    out = yaml.safe_load(yaml.safe_dump(dict(raw)))
    _drop_replaced_partners(out, overrides)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        dotted, text = item.split("=", 1)
        dotted = _student_shorthand(out, dotted.strip())
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as err:
            reason = " ".join(str(err).split())
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({reason})") from None
        parts = dotted.strip().split(".")
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = _list_index(node, part, where)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"--set {dotted}: {where} is not a section")
    return out


# Keys that say one thing two ways (steps or epochs, a step or a fraction of the run): an
# override of one replaces the file's other, so `--set train.steps=200` shortens an epochs config.
PARTNERS = {"train.steps": "train.epochs", "train.warmup_steps": "train.warmup_fraction",
            "distill.swap_step": "distill.swap_fraction"}
PARTNERS.update({v: k for k, v in PARTNERS.items()})


def _drop_replaced_partners(raw: dict, overrides: Sequence[str]) -> None:
    keys = {item.split("=", 1)[0].strip() for item in overrides}
    # A teachers: list and distill.mode say who teaches two ways: overriding one drops the file's other.
    if "teachers" in keys and "distill.mode" not in keys and isinstance(raw.get("distill"), dict):
        raw["distill"].pop("mode", None)
    if "distill.mode" in keys and not any(k == "teachers" or k.startswith("teachers.") for k in keys):
        raw.pop("teachers", None)
    # Likewise tasks: and its shorthand data.label.
    if "tasks" in keys and "data.label" not in keys and isinstance(raw.get("data"), dict):
        raw["data"].pop("label", None)
    if "data.label" in keys and not any(k == "tasks" or k.startswith("tasks.") for k in keys):
        raw.pop("tasks", None)
    for key in keys:
        partner = PARTNERS.get(key)
        if partner and partner not in keys:
            section, name = partner.split(".")
            if isinstance(raw.get(section), dict):
                raw[section].pop(name, None)


def _student_shorthand(raw: dict, dotted: str) -> str:
    """`student.x` addresses `students.0.x` in a config that lists its students (as a saved one does), and
    `students.0.x` a config that has the shorthand `student:` or neither (then listed)."""
    if isinstance(raw.get("students"), list) and (dotted == "student" or dotted.startswith("student.")):
        return "students.0" + dotted[len("student"):]
    if dotted.startswith("students.") and "students" not in raw:
        raw["students"] = [raw.pop("student", None) or {}]
    return dotted


def _list_index(node: list, part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for i, entry in enumerate(node):
        if isinstance(entry, Mapping) and entry.get("name") == part:
            return i
    raise ConfigError(f"--set {where}: no list entry named or numbered {part!r}")

