"""The synthetic worlds by name, for `pfd-data --scenario` and the benchmarks.

One generator per scenario: ``generate(out_dir, rows=, seed=, days=) -> config path``.
"""
from pfd_tf.data.synthetic import generate_cvr
from pfd_tf.data.synthetic_ctr import generate_ctr

SCENARIOS = {"cvr": generate_cvr, "ctr": generate_ctr}
