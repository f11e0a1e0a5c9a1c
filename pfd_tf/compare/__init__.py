"""pfd-compare: does distillation help on this data, and at which lambda?

Each method (a distillation mode, or PFD at one lambda) gets its own learning
rate, chosen on a validation split of the training files (`split.py`,
`runs.choose_rates`); then every method is trained at its rate on several
seeds and evaluated on the held-out files (`runs.evaluate`), and the results
are reported against the baseline student, seed by seed (`report.py`,
`stats.py`, `plot.py`; `comparison.py` runs the whole).
Every run has its own model_dir under the output directory, so a killed
comparison started again picks up where it stopped (`pfd_tf.run_dir`).
"""
