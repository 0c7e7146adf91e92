"""Parameters of every method as the bundle configures it: the network that is validated and served, and
everything trained beside it (or averaged, for the EMA teacher).

    python benchmarks/method_parameters.py                      # 2D, ACDC overlay (4 classes, 1 channel)
    python benchmarks/method_parameters.py --overlay volumes.yaml la.yaml   # 3D left atrium
"""

from __future__ import annotations

import argparse
import os
import sys

from monai.bundle import ConfigParser

from methods import method_overlays

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bundle"))  # the bundle's scripts package

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "bundle", "configs")
# method -> (baseline or None for ours, config ids of modules beside the served network)
METHODS = {
    "ours (student + teacher)": (None, ["teacher"]),
    "supervised": ("supervised", []),
    "EM": ("em", []),
    "CPS": ("cps", ["second_network"]),
    "UAMT (EMA teacher, no gradient)": ("uamt", ["ema_teacher"]),
    "CCT (3 auxiliary decoders)": ("cct", ["auxiliary_decoders"]),
    "URPC (pyramid heads)": ("urpc", ["pyramid_heads"]),
}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", nargs="+", default=["acdc.yaml"], help="dataset overlays in bundle/configs/datasets")
    args = parser.parse_args()
    print(f"| method | served network | trained or averaged beside it | total |  ({' + '.join(args.overlay)})")
    print("| --- | ---: | ---: | ---: |")
    for method, (baseline, extras) in METHODS.items():
        files = ["train.yaml", *[f"datasets/{name}" for name in args.overlay], *method_overlays(baseline)]
        config = ConfigParser()
        config.read_config([os.path.join(CONFIGS, f) for f in files])
        config["device"] = "cpu"
        served = count(config.get_parsed_content("network"))
        beside = sum(count(config.get_parsed_content(name)) for name in extras)
        print(f"| {method} | {served:,} | {beside:,} | {served + beside:,} |")


if __name__ == "__main__":
    main()
