"""Cross-field checks of a built config, section by section, in the order their errors are reported.

Part of `pfd_tf.config`: each error names the key that must change, e.g. `features[3].boundaries` or
`distill.swap_step`.  Each section's checks are in their own module (`feature_checks`, `data_checks`,
`model_checks`, `distill_checks`, `networks`, `terms_checks`, `task_checks`, `train_checks`, `schedule`);
this one runs them, in an order that reports the first error a reader would fix first (the features and
columns before what reads them).
"""
from __future__ import annotations

from pfd_tf.config.backbones import validate_backbones
from pfd_tf.config.crossdistil_checks import validate_crossdistil
from pfd_tf.config.data_checks import validate_data_files, validate_data_layout
from pfd_tf.config.distill_checks import validate_distill
from pfd_tf.config.feature_checks import validate_columns, validate_features, validate_shared_empties
from pfd_tf.config.grouping import validate_grouping
from pfd_tf.config.model_checks import validate_model
from pfd_tf.config.networks import validate_networks
from pfd_tf.config.schema import Config
from pfd_tf.config.task_checks import validate_tasks
from pfd_tf.config.task_targets import validate_task_targets
from pfd_tf.config.terms_checks import validate_terms
from pfd_tf.config.train_checks import validate_cluster, validate_train
from pfd_tf.table_size import check_table_memory


def validate(config: Config) -> None:
    """Cross-field checks; each error names the key that must change."""
    validate_features(config)
    validate_tasks(config)
    validate_task_targets(config)
    validate_columns(config)
    validate_data_layout(config)
    validate_grouping(config)
    validate_shared_empties(config)
    check_table_memory(config)
    validate_data_files(config)
    validate_model(config)
    validate_distill(config)
    validate_networks(config)
    validate_backbones(config)
    validate_terms(config)
    validate_crossdistil(config)
    validate_cluster(config)
    validate_train(config)
