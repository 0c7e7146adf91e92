"""Command line: ``python -m experiments {presets,list,run,report} ...`` (run from the repository root).

    python -m experiments list acdc_cpu                       # the grid and each run's status
    python -m experiments run acdc_cpu                        # run what is unfinished, then report
    python -m experiments run acdc_cpu --shard 3/18           # job 3 of an array of 18
    python -m experiments report acdc_cpu                     # tables and figures of finished runs
    python -m experiments restore acdc_confirm --runs_csv bundle/docs/results/acdc_confirm/runs.csv
"""

from __future__ import annotations

import argparse
import os
import sys

from scripts.cli import key_value

from . import REPOSITORY_ROOT
from .grid import PresetError, load_preset, preset_names, select, shard
from .runner import command, restore, run_all, run_dir, status


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected INDEX/COUNT, e.g. 0/4, got {text!r}") from None
    return index, count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("presets", help="the presets in experiments/presets")
    for name, text in (("list", "print the grid, each run's status and command (nothing runs)"),
                       ("run", "run the unfinished runs in sequence, then write the report"),
                       ("report", "write results.md, results.csv and figures from the finished runs"),
                       ("restore", "record finished runs from a report's runs.csv, whose run folders were not kept")):
        p = commands.add_parser(name, help=text)
        p.add_argument("preset", help="a preset name (experiments/presets/<name>.yaml) or a YAML path")
        p.add_argument("--output", help="the experiment's folder (default: experiments/runs/<preset>)")
        p.add_argument("--datasets", nargs="+", help="only these datasets of the preset")
        p.add_argument("--fractions", nargs="+", type=float, help="these label fractions instead")
        p.add_argument("--methods", nargs="+", help="only these methods of the preset")
        p.add_argument("--seeds", nargs="+", type=int, help="these seeds instead")
        p.add_argument("--dataset_dir", action="extend", nargs="+", default=[], type=key_value, metavar="NAME=PATH",
                       help="where a dataset of the preset is")
        if name == "restore":
            p.add_argument("--runs_csv", required=True, help="the runs.csv of a report of this preset")
        if name not in ("report", "restore"):
            p.add_argument("--shard", type=_shard, metavar="INDEX/COUNT",
                           help="only the runs of job INDEX of COUNT (a job array)")
        if name == "run":
            p.add_argument("--fresh", action="store_true",
                           help="start interrupted or failed runs again from nothing instead of resuming them")
            p.add_argument("--no_report", action="store_true", help="do not write the report afterwards")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "presets":
            for name in preset_names():
                print(f"{name:24s} {load_preset(name).description}")
            return 0
        preset = select(load_preset(args.preset), args.datasets, args.fractions, args.methods, args.seeds,
                        dict(args.dataset_dir), require_dataset_dirs=args.command == "run")
        root = os.path.abspath(args.output or os.path.join(REPOSITORY_ROOT, "experiments", "runs", preset.name))
        runs = preset.runs()
        if getattr(args, "shard", None):
            runs = shard(runs, *args.shard)
        if args.command == "restore":
            restored = restore(root, runs, args.runs_csv)
            print(f"restored {len(restored)} runs from {args.runs_csv} into {root}")
            return 0
        if args.command == "list":
            print(f"{preset.name}: {preset.description}\n{len(runs)} runs in {root}")
            for run in runs:
                print(f"{status(root, run):12s} {run.key}")
                print(f"{'':12s} {' '.join(command(root, run))}  # {run_dir(root, run)}/settings.yaml")
            return 0
        failed = 0
        if args.command == "run":
            records = run_all(root, runs, fresh=args.fresh)
            failed = sum(record["status"] != "finished" for record in records)
            if args.no_report:
                return int(failed > 0)
        from .report import write_report

        for path in write_report(root, preset):
            print(f"wrote {path}")
        return int(failed > 0)
    except PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
