"""``test_cases.png``: test cases from the worst to the best Dice, as the test scored them."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ignite.engine import Engine, Events  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from monai.metrics import compute_dice  # noqa: E402
from monai.transforms import LoadImage  # noqa: E402

from .atomic import atomic_write  # noqa: E402
from .handlers import LABEL_COLOURS  # noqa: E402

LABEL_CMAP = ListedColormap(LABEL_COLOURS / 255.0)


class RankedCasesFigure:
    """After the test, draws ``num_cases`` test cases spread over their Dice ranking, from the worst to the
    best (the image, the mask file and the prediction; a volume shows its slice along the last axis with the
    most labeled voxels) into ``path``. A case's Dice is the test's: MONAI's ``compute_dice`` of the one-hot
    prediction and ``label_key``, averaged over the foreground classes the mask holds; a case without any is
    not ranked. While the test runs, only label maps shrunk to at most ``max_side`` pixels a side are kept;
    the drawn images are read back from their files. In a run of several processes, rank 0 draws its share."""

    def __init__(self, path: str, label_key: str = "label", num_cases: int = 6, max_side: int = 256) -> None:
        self.path = path
        self.label_key = label_key
        self.num_cases = num_cases
        self.max_side = max_side
        self.cases: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.cases.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.draw)

    def collect(self, engine: Engine) -> None:
        for item in engine.state.output:
            prediction, target = item["pred"].detach().cpu(), item[self.label_key].detach().cpu()
            dice = compute_dice(prediction[None].float(), target[None].float(), include_background=False)
            score = float(torch.nanmean(dice))
            if math.isnan(score):
                continue
            prediction, target = prediction.argmax(0), target.argmax(0)
            depth = int((target > 0).flatten(0, 1).sum(0).argmax()) if target.ndim == 3 else None
            path = str(item["image"].meta["filename_or_obj"])
            self.cases.append({
                "name": os.path.basename(path).split(".")[0], "path": path, "score": score, "depth": depth,
                "prediction": self._shrunk(prediction, depth), "target": self._shrunk(target, depth),
            })

    def chosen(self) -> list[dict]:
        """The cases drawn: ``num_cases`` spread evenly over the ranking, worst first."""
        ranked = sorted(self.cases, key=lambda case: case["score"])
        picks = np.linspace(0, len(ranked) - 1, min(self.num_cases, len(ranked))).round().astype(int)
        return [ranked[i] for i in np.unique(picks)]

    def draw(self, engine: Engine | None = None) -> None:
        cases = self.chosen()
        if not cases:
            return
        figure, axes = plt.subplots(len(cases), 3, figsize=(7.0, 2.3 * len(cases)), squeeze=False, layout="constrained")
        columns = (("image", None), ("mask file", "target"), ("prediction", "prediction"))
        for row, case in enumerate(cases):
            image = self._image(case)
            for col, (title, labels) in enumerate(columns):
                axis = axes[row][col]
                axis.axis("off")
                axis.imshow(image, cmap="gray")
                if labels is not None:
                    shown = np.ma.masked_equal(case[labels], 0).T
                    axis.imshow(shown, cmap=LABEL_CMAP, vmin=0, vmax=len(LABEL_COLOURS) - 1, alpha=0.6,
                                interpolation="nearest")
                axis.set_title(f"{case['name']}, Dice {case['score']:.3f}" if col == 0 else title, fontsize=8)
        figure.suptitle("test cases from the worst to the best Dice", fontsize=9)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        atomic_write(self.path, lambda tmp: figure.savefig(tmp, dpi=110))
        plt.close(figure)

    def _stride(self, shape: tuple[int, ...]) -> int:
        return max(1, math.ceil(max(shape) / self.max_side))

    def _shrunk(self, labels: torch.Tensor, depth: int | None) -> np.ndarray:
        labels = labels[..., depth] if depth is not None else labels
        stride = self._stride(tuple(labels.shape))
        return labels[::stride, ::stride].numpy().astype(np.uint8)

    def _image(self, case: dict) -> np.ndarray:
        """The case's image as drawn: its slice, shrunk like its label maps, grey or RGB scaled to [0, 1], rows
        and columns swapped as the label maps are (MONAI reads pictures as x, y)."""
        image = torch.as_tensor(LoadImage(image_only=True, ensure_channel_first=True)(case["path"])).float()
        image = image[..., case["depth"]] if case["depth"] is not None else image
        stride = self._stride(tuple(image.shape[1:]))
        image = image[:3 if image.shape[0] == 3 else 1, ::stride, ::stride]
        low = image.flatten(1).min(1).values[:, None, None]
        high = image.flatten(1).max(1).values[:, None, None]
        image = ((image - low) / (high - low).clamp_min(1e-8)).permute(2, 1, 0).numpy()
        return image if image.shape[-1] == 3 else image[..., 0]
