"""Each command's `--help` lists its own flags, one line each, fast and without TensorFlow's (`pfd_tf.cli.usage`).

Every module of `pfd_tf/cli/` that defines `run()` is a command (a new one,
pfd-eval, is covered once it exists), and `launch.cli` is pfd-launch.  Each
is run twice: as `python -m MODULE --help`, and as its console script runs
it (`sys.argv[0]` the script's path, the module imported by name), the form
whose `--help` printed nothing but "Try --helpfull".
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = sorted(
    f"pfd_tf.cli.{os.path.basename(path)[:-3]}" for path in glob.glob(os.path.join(ROOT, "pfd_tf", "cli", "*.py"))
    if "\ndef run():\n" in open(path).read()) + ["launch.cli"]
# Console scripts' flags as the README and the docs spell them; each must be listed by its command's --help.
EXPECTED = {
    "pfd_tf.cli.train": {"config", "model_dir", "set", "overwrite"},
    "pfd_tf.cli.export": {"model_dir", "checkpoint", "out"},
    "pfd_tf.cli.data": {"scenario", "out", "rows", "seed", "days", "world", "overwrite"},
    "pfd_tf.cli.vocab": {"config", "out", "set", "overwrite"},
    "pfd_tf.cli.compare": {"config", "out", "modes", "lambdas", "seeds", "rates", "set"},
    "pfd_tf.cli.report": {"teachers", "checkpoint", "warmup", "repeats", "batch_sizes"},
    "launch.cli": {"config", "model_dir", "workers", "ps", "evaluator", "set", "restart_on_failure", "emit_compose"},
}
AS_CONSOLE_SCRIPT = """
import sys
sys.argv[0] = "/usr/local/bin/pfd-command"  # what a console script's argv[0] is
from {module} import run
try:
    run()
finally:
    print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def _help(module: str, console_script: bool) -> subprocess.CompletedProcess:
    command = ([sys.executable, "-c", AS_CONSOLE_SCRIPT.format(module=module), "--help"] if console_script
               else [sys.executable, "-m", module, "--help"])
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})


def test_every_command_is_here():
    assert set(EXPECTED) <= set(COMMANDS), COMMANDS


@pytest.mark.parametrize("console_script", [False, True], ids=["python-m", "console-script"])
@pytest.mark.parametrize("module", COMMANDS)
def test_help_lists_the_commands_own_flags_one_line_each(module, console_script):
    proc = _help(module, console_script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    listed = out[out.index("\nflags:\n") + len("\nflags:\n"):].split("\n\n")[0].splitlines()
    names = {line.split()[0].replace("--[no]", "").lstrip("-") for line in listed}
    assert EXPECTED.get(module, set()) <= names and names, out
    assert all(line.startswith("  --") for line in listed), listed  # one line per flag
    assert "Try --helpfull" not in out
    for tensorflow_flag in ("--xla_", "--tf_", "--test_srcdir", "--pdb_post_mortem", "--only_check_args"):
        assert tensorflow_flag not in out
    if console_script:
        assert out.rstrip().endswith("tensorflow imported: False"), out[-300:]


def test_a_required_flag_is_marked_and_a_default_is_shown():
    from pfd_tf.cli.usage import _described

    values = flags.FlagValues()
    flags.DEFINE_string("needed", None, "Needed.", required=True, flag_values=values)
    flags.DEFINE_integer("count", 3, "How many.", flag_values=values)
    flags.DEFINE_multi_string("item", [], "An item.", flag_values=values)
    assert _described(values["needed"]) == "Needed. (required)"
    assert _described(values["count"]) == "How many. (default: 3)"
    assert _described(values["item"]) == "An item. (repeatable)"
