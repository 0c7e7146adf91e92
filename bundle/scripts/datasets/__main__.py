"""Command line: ``python -m scripts.datasets {list,prepare,download} ...`` (run in the bundle folder).

    python -m scripts.datasets prepare glas --root /data/GlaS --fraction 5 --seed 0 --output /data/prepared/glas
    python -m scripts.datasets download heart --root /data
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ..cli import key_value
from . import SOURCES, prepare
from .download import download
from .splits import DatasetError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.datasets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the known dataset layouts")
    p = commands.add_parser("prepare", help="write <output>/datalist.json (and converted masks/volumes)")
    p.add_argument("dataset", choices=sorted(SOURCES))
    p.add_argument("--root", required=True, help="the dataset as the publisher ships it")
    p.add_argument("--output", help="folder for datalist.json and converted files (default: prepared/<dataset>)")
    p.add_argument("--fraction", type=float, default=100.0, help="percent of training groups that keep labels")
    p.add_argument("--num-labeled", type=int, help="exactly this many labeled groups (instead of --fraction)")
    p.add_argument("--labeled-selection", choices=("seeded", "first"), default="seeded",
                   help="draw the labeled groups with --seed, or take the first ones of train.list")
    p.add_argument("--seed", type=int, default=0, help="seed of the labeled subset")
    p.add_argument("--split-seed", type=int, default=0, help="seed of carved validation/test splits")
    p.add_argument("--val-fraction", type=float, help="fraction of training groups carved as validation")
    p.add_argument("--test-fraction", type=float, help="fraction carved as test where the publisher has none")
    p.add_argument(
        "--num-classes", type=int, help="classes with background (folder; decathlon and nnunet check dataset.json)"
    )
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", type=key_value,
                   help="a reader option, e.g. subset=human (hmeps), group_pattern=... (folder, decathlon, nnunet), "
                        "mask_values=0,255 and mask_suffix=_mask (folder)")
    p.add_argument("--no-check", action="store_true", help="skip reading every file")
    d = commands.add_parser("download", help="download and unpack where the publisher allows it")
    d.add_argument("dataset", choices=sorted(SOURCES))
    d.add_argument("--root", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "list":
            for name, source in SOURCES.items():
                print(f"{name:14s} {source.summary}")
        elif args.command == "download":
            print(f"downloaded: {download(args.dataset, args.root)}")
        else:
            options = dict(args.option)
            datalist = prepare(
                args.dataset, args.root, args.output or os.path.join("prepared", args.dataset), args.num_classes,
                args.fraction, args.seed, args.num_labeled, args.labeled_selection, args.split_seed,
                args.val_fraction, args.test_fraction, check=not args.no_check, options=options,
            )
            print(json.dumps({part: len(items) for part, items in datalist.items()}))
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
