"""Tasks: what each label is trained and scored by, one object per label (TFRS's `tasks.Ranking` is the anchor).

A task names the label column it reads (`label`), the key its labels go by
in a batch and in every metric (`name`), its weight in the loss, its loss on
`(labels, logits)` and its progress metrics.  Two kinds, one module each:

- `binary.BinaryTask`          log loss (Eq. (6) of the PFD paper), AUC and log loss as metrics;
- `regression.RegressionTask`  mean squared error, for a continuous target such as the
                               auxiliary tasks of the PFD paper's MTL baseline (Section 5.3);
                               MSE and RMSE as metrics.

`build.tasks_for(config)` makes the config's tasks (`tasks:`, or the one
binary task `data.label` stands for); `labels.hard_label_loss` is a
network's loss over them.  Import each from its module.
"""
