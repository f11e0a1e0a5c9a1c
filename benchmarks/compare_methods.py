"""Every distillation method on a synthetic world: `pfd-compare` over the worlds of the PFD paper's tables.

    python benchmarks/compare_methods.py --scenario cvr --out bench_out/table4 --lambdas 0.1,0.3,0.5,0.7,0.9
                                                                              # Tables 4 and 6
    python benchmarks/compare_methods.py --scenario ctr --out bench_out/table2 --modes baseline,pfd,md,pfd_md
                                                                              # Table 2
        [--seeds 0,1,2] [--tune-seed 100] [--rows 200000] [--rates 0.2,0.4,0.8,1.6,3.2]
        [--normalizations none,batch,layer] [--embedding-l2 0,1e-6] [--grid key=v1,v2 ...]
        [--set key=value ...] [--world FIELD=VALUE ...]

What `pfd-compare` does on a user's data (pfd_tf/compare), with worlds for
seeds: each method's grid point (learning rate x tower normalization, and
any other axis) is chosen on the validation world (`--tune-seed`, never one
of `--seeds`; its last training day is the validation split), then every
method trains at its point on each evaluation
world (`pfd-data --scenario S --seed N`, trained with train.seed N) and is
evaluated on that world's held-out day.  The CVR world's MLP student is the
paper's fine-grained CVR ranker (Table 4, and Table 6 by lambda); the CTR
world's two-tower student its coarse-grained CTR ranker (Table 2).  The
report (compare.md, compare.json, compare.png) goes to OUT; a killed run
started again reads back the runs that finished.
"""
from __future__ import annotations

import argparse
import os

from common import add_world_argument, parse_world

from pfd_tf._keras import tf
from pfd_tf.compare.comparison import run_comparison
from pfd_tf.datasets.scenarios import SCENARIOS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="cvr")
    parser.add_argument("--out", default=None, help="default: bench_out/<scenario>_methods")
    parser.add_argument("--seeds", default="0,1,2", help="evaluation worlds (and training seeds)")
    parser.add_argument("--tune-seed", type=int, default=100, help="the validation world grid points are chosen on")
    parser.add_argument("--rows", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--modes", default="", help="default: every mode the world can train")
    parser.add_argument("--lambdas", default="", help="PFD lambda sweep (Table 6); default: none")
    parser.add_argument("--rates", default="", help="learning-rate grid; default: the world config's rate x 1/4..4")
    parser.add_argument("--normalizations", default="none,batch,layer",
                        help="tower normalizations in the grid; empty: the world config's own only")
    parser.add_argument("--embedding-l2", default="", help="train.embedding_l2 values in the grid; default: off")
    parser.add_argument("--grid", action="append", default=[], help="a grid axis key=v1,v2 (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    add_world_argument(parser)
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")  # each run's Evaluator traces its own functions: not a retracing problem
    if str(args.tune_seed) in args.seeds.split(","):
        parser.error(f"--tune-seed {args.tune_seed} is one of --seeds: rates must be chosen on another world")
    world = {"rows": args.rows} if args.rows else {}
    world.update(parse_world(parser, args.scenario, args.world))
    out = args.out or os.path.join("bench_out", f"{args.scenario}_methods")

    def world_config(seed: int) -> str:
        data_dir = os.path.join(out, f"data-{seed}")
        config = os.path.join(data_dir, "config.yaml")
        if not os.path.exists(config):  # written last: a present config means a whole world
            SCENARIOS[args.scenario](data_dir, seed=seed, **world)
        return config

    table = {"cvr": "Tables 4 and 6: synthetic CVR world, MLP student",
             "ctr": "Table 2: synthetic CTR world, two-tower student"}.get(args.scenario, args.scenario)
    extra = "".join(f", {w}" for w in args.world) + (f", {args.rows} rows" if args.rows else "")
    run_comparison(world_config(args.tune_seed), out, modes=args.modes, lambdas=args.lambdas, seeds=args.seeds,
                   rates=args.rates, overrides=args.set, title=f"{table} (worlds {args.seeds}{extra})",
                   config_for_seed=world_config, tune_seed=args.tune_seed, normalizations=args.normalizations,
                   embedding_l2=args.embedding_l2, grid=args.grid, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
