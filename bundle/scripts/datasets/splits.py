"""Splits and the labeled subset, chosen per group (patient, volume or image) by one documented rule.

* a missing validation or test split is carved from the training groups whose images all have masks:
  ``max(1, round(N * fraction))`` of them, drawn with ``split_seed``; with a ``labeled_order``, never from
  the groups at its head that the labeled subset takes;
* the labeled subset is ``max(1, ceil(N * label_fraction / 100))`` of the N training groups (or exactly
  ``num_labeled``), drawn with ``seed`` among training groups whose images all have masks, or the first
  ones in ``labeled_order`` when given (at most all annotated groups; none is an error); the rest of the
  training split is unlabeled.

Every draw sorts ids first, so results depend on the seed only, never on file-system order.
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SPLITS = ("train", "validation", "test")
logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """Bad input data: the message names the file or setting at fault."""


@dataclass(frozen=True)
class Case:
    """One image with its mask (``label`` None: unlabeled) and the group it is split with."""

    image: str
    label: str | None
    group: str
    volume: str | None = None   # the volume a 2D slice was cut from (its case id), where the layout says
    image_source: str | None = None  # the publisher's file that ``image`` was converted from
    label_source: str | None = None  # likewise for ``label``


def _draw(groups: Sequence[str], count: int, seed: int) -> list[str]:
    return sorted(random.Random(seed).sample(sorted(groups), count))


def make_datalist(
    cases: Sequence[Case],
    splits: Mapping[str, Sequence[str]] | None = None,
    label_fraction: float = 100.0,
    seed: int = 0,
    num_labeled: int | None = None,
    labeled_order: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    source: str = "the dataset",
) -> dict[str, list[dict]]:
    """``{"labeled", "unlabeled", "validation", "test"}`` lists of ``{"image", ["label"], "group", ["volume"]}``.

    ``splits`` maps "train", "validation", "test" to the groups the publisher assigns to them; groups in
    none of them join the training split unless "train" is given. ``source`` names the data in errors.
    """
    if num_labeled is None and not 0 < label_fraction <= 100:
        raise DatasetError(f"label_fraction must be in (0, 100], got {label_fraction}.")
    if num_labeled is not None and num_labeled < 1:
        raise DatasetError(f"num_labeled must be at least 1, got {num_labeled}.")
    if not cases:
        raise DatasetError(f"no images found in {source}.")
    members: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        members[case.group].append(case)
    annotated = {g for g, items in members.items() if all(c.label is not None for c in items)}

    splits = {name: set(groups) for name, groups in (splits or {}).items()}
    unknown = sorted(set().union(*splits.values()) - set(members)) if splits else []
    if unknown:
        raise DatasetError(f"{source}: split lists name {unknown[:5]}, which have no images.")
    split = {name: splits.get(name, set()) for name in SPLITS}
    if "train" not in splits:
        split["train"] = set(members) - split["validation"] - split["test"]
    # with an order, the first groups stay training groups: "the first N labeled" means the first N of the list
    reserved = set()
    if labeled_order is not None:
        reserved = set([g for g in labeled_order if g in split["train"] & annotated][
            : num_labeled or math.ceil(len(split["train"]) * label_fraction / 100)])
    for name, fraction in (("test", test_fraction), ("validation", val_fraction)):
        if name in splits:
            continue
        candidates = sorted(split["train"] & annotated - reserved)
        count = min(len(candidates) - 1, max(1, round(len(split["train"]) * fraction))) if fraction > 0 else 0
        if count < 1:
            raise DatasetError(
                f"cannot carve a {name} split from {len(candidates)} annotated training group(s) of {source}: "
                f"give a {name} list or more annotated images."
            )
        split[name] = set(_draw(candidates, count, split_seed))
        split["train"] -= split[name]
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = split[a] & split[b]
        if shared:
            raise DatasetError(f"{source}: groups in both the {a} and {b} splits: {sorted(shared)[:5]}")
    for name in ("validation", "test"):
        missing = sorted(split[name] - annotated)
        if missing:
            image = next(c.image for c in members[missing[0]] if c.label is None)
            raise DatasetError(f"{name} image without a mask: {image}")
    if not split["train"]:
        raise DatasetError(f"the training split of {source} is empty.")

    train_groups = sorted(split["train"])
    count = num_labeled or max(1, math.ceil(len(train_groups) * label_fraction / 100))
    candidates = sorted(split["train"] & annotated)
    if not candidates:
        raise DatasetError(
            f"no labeled training images: none of the {len(train_groups)} training groups of {source} has masks."
        )
    if count > len(candidates):
        logger.warning(
            f"{count} labeled training groups asked for, but only {len(candidates)} of the {len(train_groups)} "
            f"training groups of {source} have masks: all {len(candidates)} are used."
        )
        count = len(candidates)
    if labeled_order is not None:
        labeled = set([g for g in labeled_order if g in candidates][:count])
    else:
        labeled = set(_draw(candidates, count, seed))

    def items(groups, with_label: bool) -> list[dict]:
        out = []
        for group in sorted(groups):
            for case in sorted(members[group], key=lambda c: c.image):
                item = {"image": case.image, "group": group}
                if case.volume is not None:
                    item["volume"] = case.volume
                if with_label and case.label is not None:
                    item["label"] = case.label
                out.append(item)
        return out

    return {
        "labeled": items(labeled, True),
        "unlabeled": items(split["train"] - labeled, False),
        "validation": items(split["validation"], True),
        "test": items(split["test"], True),
    }
