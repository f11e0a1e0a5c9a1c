"""`pfd-data`: writes a synthetic PFD dataset (day-split CSVs + config.yaml).

    pfd-data --scenario cvr|ctr|ensemble|interactions|dial|multitask --out DIR [--rows N] [--seed S] [--days D]
             [--world FIELD=VALUE ...] [--overwrite]

The `cvr` scenario simulates clicks whose label is the purchase and whose
privileged features are post-click behaviour (dwell time, add-to-cart, ...),
as in Section 3 of the PFD paper; see :mod:`pfd_tf.datasets.cvr`. The `ctr`
scenario simulates impressions (label: click) with users' behaviour
histories and privileged user-item interacted features, for a two-tower
coarse ranker; see :mod:`pfd_tf.datasets.ctr`. The `ensemble`
scenario simulates impressions (label: click) over 20 categorical fields
whose click logit has first-order, FM-like second-order and 3-field
higher-order parts, so that LR, FM and the deep models of the zoo reach
different AUCs, and its config distils three teachers (FM, DCN-v2, xDeepFM)
into a DNN through a gating network (Zhu et al. 2020); see
:mod:`pfd_tf.datasets.ensemble`. The `interactions` scenario
simulates impressions over 16 categorical fields whose click logit has
interactions of order 1 to 4 among latent vectors of the fields, and its
config distils a DCN-v2 teacher into a DAGFM student (KD-DAGFM); see
:mod:`pfd_tf.datasets.interactions`. The written
``DIR/config.yaml`` can be handed to ``pfd-train`` as is. ``--world`` changes
one field of the world's dataclass (``CvrWorld``, ``CtrWorld``,
``EnsembleWorld``, ``InteractionsWorld``, ``DialWorld``, ``MultitaskWorld``), e.g. ``--world interacted_scale=2`` for a CTR world whose
privileged features know twice as much, or ``--world higher_order_scale=0``
for an ensemble world that FM can fit as well as the deep models.

The `dial` scenario (:mod:`pfd_tf.datasets.dial`) simulates clicks
(label: purchase) whose purchase is 1[f(x) + base + eta > 0]: f(x) from user
and item ids (biases and latent affinity) and context (item category, user
segment, hour, device), eta ~ N(0, 1) an event-level noise no regular feature
sees, and one privileged feature, engagement = sqrt(rho) eta + sqrt(1 - rho) xi
(xi ~ N(0, 1)).  Its config trains an MLP student by PFD.  Its knobs
(``--world``, fields of ``DialWorld``; stds in units of eta):

    privileged_share  rho in [0, 1], the dial: share of eta's variance that
                      engagement explains (0: pure noise, 1: the label leaks;
                      default 0.75)
    rows_per_id       mean rows per user and per item: users = items =
                      rows / rows_per_id (default 20)
    taste_dim         user/item latent dimension (8)
    affinity_std, user_bias_std, item_bias_std   the id parts of f (0.4 each)
    n_categories, category_std   item categories and their effect (30, 0.3)
    n_segments, segment_std      user segments and their effect (8, 0.25)
    hour_std, device_std         context effects (0.15, 0.1)
    purchase_rate     the base is solved to give it (0.2)

e.g. ``--scenario dial --world privileged_share=0.9 --world rows_per_id=5``.
One seed gives the same regular columns and labels at every
privileged_share: only engagement changes.

The `multitask` scenario (:mod:`pfd_tf.datasets.multitask`) simulates
impressions with two correlated labels, ``like`` and ``buy`` (a liked
impression is more often bought, yet a third or more of the purchases are
not liked), and the privileged post-event features ``dwell_time`` and
``viewed_comments``.  Its config trains the two tasks (``tasks:``) on a
PLE student distilled from a PLE teacher that also reads the privileged
features, and metrics.json reports each task's AUC and log loss and the
Multi-AUC of CrossDistil's Eq. (12) (``MultitaskWorld`` fields for
``--world``; :mod:`pfd_tf.datasets.multitask_config`).

``DIR`` must be empty or new: the config reads ``train/*.csv``, so older
day files would join the data.  ``--overwrite`` replaces what pfd-data wrote
there before (listed in ``DIR/.pfd-data.json``) and refuses a file it did
not write that the new config would read (:mod:`pfd_tf.datasets.output_dir`).
Errors go to stderr as ``pfd-data: error: ...`` with exit status 2.
"""
import functools
import sys

from absl import app, flags

from pfd_tf.cli import usage
from pfd_tf.datasets.output_dir import OutputDirError, write_dataset_into
from pfd_tf.datasets.scenarios import SCENARIOS, world_overrides

FLAGS = flags.FLAGS
flags.DEFINE_enum("scenario", None, list(SCENARIOS), "Which synthetic world.")
flags.DEFINE_string("out", None, "Output directory: new or empty (created if missing), or see --overwrite.")
flags.DEFINE_integer("rows", None, "Number of rows (clicks for cvr and dial, impressions for the others), "
                     "train and test together; default: the scenario's (200,000 for cvr and multitask, 600,000 "
                     "for ctr, 400,000 for ensemble and interactions, 100,000 for dial).", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Random seed; the same seed writes byte-identical files.")
flags.DEFINE_integer("days", 8, "Days of logs; the last day is the test set.", lower_bound=2)
flags.DEFINE_multi_string("world", [], "FIELD=VALUE: overrides a field of the scenario's world "
                          "dataclass (repeatable), e.g. interacted_scale=2 (ctr) or privileged_share=0.9 (dial).")
flags.DEFINE_boolean("overwrite", False, "Replace the dataset pfd-data wrote in --out before "
                     "(without it, a non-empty --out is refused).")
flags.mark_flags_as_required(["scenario", "out"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    generate = SCENARIOS[FLAGS.scenario]
    try:
        sized = {"rows": FLAGS.rows} if FLAGS.rows is not None else {}
        world = world_overrides(FLAGS.scenario, FLAGS.world)
        write = functools.partial(generate, seed=FLAGS.seed, days=FLAGS.days, **sized, **world)
        config = write_dataset_into(FLAGS.out, write, overwrite=FLAGS.overwrite)
    except OutputDirError as err:
        print(f"pfd-data: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # e.g. too few rows for the number of days
        raise app.UsageError(str(err)) from err
    print(config)
    return 0


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
