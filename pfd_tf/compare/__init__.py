"""pfd-compare: does distillation help on this data, and at which lambda?

Each method (a distillation mode, or PFD at one lambda) gets its own grid
point (learning rate x tower normalization x any other axis: `grid.py`),
chosen on a validation split (`split.py`, `runs.choose_points`): of the
training files, or of another world's (`--validation_config`); then every
method is trained at its point on several seeds and evaluated on the
held-out files (`runs.evaluate`), and the results are reported against the
baseline student, seed by seed (`report.py`, `stats.py`, `plot.py`;
`comparison.py` runs the whole).  A run that diverges is recorded as such
and the comparison goes on; each run's console is in its own `train.log`
(`console.py`).  Every run has its own model_dir under the output directory,
so a killed comparison started again picks up where it stopped
(`pfd_tf.run_dir`).
"""
