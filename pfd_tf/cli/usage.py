"""Each command's `--help`: what the command does and its own flags, one line each.

absl's `--help` lists the flags of the module it takes for the main one,
found by `sys.argv[0]`.  A console script (`pfd-train`, `pfd-export`,
`pfd-launch`) is not that module, so `--help` printed nothing of the
command's flags, only "Try --helpfull", which lists absl's and
TensorFlow's too (124 lines).  Here the command names its own module, and `--help`
prints that module's docstring and the flags it defines, before anything
else runs (no TensorFlow import: an answer in a fraction of a second).
`--helpfull` is absl's, unchanged.

A command calls it in one line::

    def run():
        usage.run(main, __name__)
"""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, flags

HELP_ARGS = ("-h", "-?", "-help", "--help", "--helpshort")
_MULTI_SUFFIX = "; repeat this option to specify a list of values"  # absl's, added to a multi flag's help


def run(main: Callable, module_name: str) -> None:
    """`app.run(main)`, except that a help flag prints `usage(module_name)` and exits 0."""
    args = sys.argv[1:]
    if "--" in args:  # what follows is not a flag
        args = args[: args.index("--")]
    if any(arg in HELP_ARGS for arg in args):
        sys.stdout.write(usage(module_name))
        sys.stdout.flush()
        sys.exit(0)
    app.run(main)


def usage(module_name: str) -> str:
    """The module's docstring, then one line per flag the module defines: name, default, help."""
    module = sys.modules[module_name]
    own = flags.FLAGS.flags_by_module_id_dict().get(id(module), [])
    names = [_spelled(flag) for flag in own]
    width = max((len(name) for name in names), default=0)
    lines = [(module.__doc__ or "").strip(), "", "flags:"]
    for name, flag in sorted(zip(names, own), key=lambda pair: pair[1].name):
        lines.append(f"  {name.ljust(width)}  {_described(flag)}")
    lines += ["", "(absl's and TensorFlow's own flags: --helpfull)", ""]
    return "\n".join(lines)


def _spelled(flag: flags.Flag) -> str:
    return f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"


def _described(flag: flags.Flag) -> str:
    """The flag's help on one line, with its default where it has one worth saying."""
    text = " ".join((flag.help or "").split()).replace(_MULTI_SUFFIX, "")
    if isinstance(flag, flags.MultiFlag) and "repeatable" not in text:
        text += " (repeatable)"
    default = flag.default
    if _required(flag):
        text += " (required)"
    elif flag.boolean:
        text += " (default: true)" if default else ""
    elif default not in (None, "", [], ()):
        shown = ",".join(str(v) for v in default) if isinstance(default, (list, tuple)) else str(default)
        text += f" (default: {shown})"
    return text


def _required(flag: flags.Flag) -> bool:
    """Marked required (`required=True`): absl records it only as a validator refusing None."""
    return any("must have a value other than None" in getattr(v, "message", "") for v in flag.validators)
