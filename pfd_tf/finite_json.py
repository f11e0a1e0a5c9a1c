"""Results as strict JSON: a number that is not finite is left out, with a warning that names it.

Python's `json` writes NaN and Infinity by default, which no strict JSON
reader accepts (and which says nothing a reader could use).  A metric that
is not finite (e.g. an AUC of logits that overflowed) is left out, as an
undefined AUC is (one class in the held-out rows; in a list it becomes
null, so that the positions hold), and a warning on stderr names its key,
e.g. `student.auc`; the rest of the results are written.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, IO


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def finite_only(value: Any, key: str = "", dropped: list[str] | None = None) -> Any:
    """`value` with each float that is not finite left out of its dict (in a list: null, keeping the positions),
    at any depth; what was left out goes to `dropped` as 'key (value)'."""
    dropped = [] if dropped is None else dropped
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            where = f"{key}.{name}" if key else str(name)
            if _not_finite(item):
                dropped.append(f"{where} ({item})")
            else:
                out[name] = finite_only(item, where, dropped)
        return out
    if isinstance(value, (list, tuple)):
        out_list = []
        for i, item in enumerate(value):
            if _not_finite(item):
                dropped.append(f"{key}[{i}] ({item})")
            out_list.append(None if _not_finite(item) else finite_only(item, f"{key}[{i}]", dropped))
        return out_list
    return value


def dump(data: Any, f: IO[str], what: str = "metrics.json") -> None:
    """`json.dump(data, f, indent=2)`, strict (`finite_only`), each number left out named in a warning on stderr."""
    dropped: list[str] = []
    clean = finite_only(data, dropped=dropped)
    for item in dropped:
        print(f"warning: {what}: {item} is not a finite number: left out (null in a list)", file=sys.stderr, flush=True)
    json.dump(clean, f, indent=2, allow_nan=False)
