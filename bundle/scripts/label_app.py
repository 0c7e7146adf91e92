"""The bundle's MONAI Label app (``scripts.label_server`` installs this file as the app's ``main.py``; it runs in
MONAI Label's environment). It is MONAI Label's ``monaibundle`` app for the bundle in ``model/``, plus:

* ``uncertainty``, a scoring method and the active-learning strategy of the same name: every unlabeled image
  is scored by the bundle's predictive uncertainty (``scripts.uncertainty``: the mean normalised entropy over
  ``uncertainty_draws`` noise draws, stored in the datastore as ``uncertainty``), and the strategy serves the
  most uncertain one. Scores are recomputed when ``models/model.pt`` changes;
* a train task that applies what MONAI Label's train panel sets to the bundle's own ids: the bundle's
  ``displayable_configs`` (rounds, stage-1 epochs, ...) and ``max_epochs``, which the stock task sets on the
  trainer alone (the lambda ramp would then keep the old length).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import monailabel
import torch
from monai.bundle import ConfigParser
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.scoring import ScoringMethod
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel.utils.others.generic import get_bundle_models, name_to_device, strtobool

logger = logging.getLogger(__name__)
SCORE_KEY = "uncertainty"


class BundleSettingsTrainTask(BundleTrainTask):
    """MONAI Label's bundle train task, with the panel's values set on the ids of the same names: shown as a
    training from the datastore sets them (``train#dataset#data`` given), and their values filled in where
    a request leaves them out."""

    def _displayable(self) -> dict[str, Any]:
        key = self.const.key_train_dataset_data()
        given = self.bundle_config[key]
        self.bundle_config[key] = []
        try:
            return dict(self.bundle_config.get_parsed_content(self.const.key_displayable_configs()[0], instantiate=True))
        finally:
            self.bundle_config[key] = given

    def config(self) -> dict[str, Any]:
        return {**super().config(), **self._displayable()}

    def __call__(self, request: dict, datastore: Datastore):
        return super().__call__({**self._displayable(), **request}, datastore)

    def _update_overrides(self, overrides: dict) -> dict:
        overrides.update(overrides.get(self.const.key_displayable_configs()[0]) or {})
        epochs = overrides.pop(self.const.key_train_trainer_max_epochs(), None)
        if epochs is not None:
            overrides["max_epochs"] = epochs
        return overrides


class UncertaintyScoring(ScoringMethod):
    """Scores the unlabeled images whose score is missing or older than ``models/model.pt``."""

    def __init__(self, bundle_path: str, num_draws: int = 8) -> None:
        super().__init__(f"predictive uncertainty over {num_draws} noise draws (mean normalised entropy)")
        self.bundle_path = bundle_path
        self.num_draws = num_draws

    def _scorer(self, device: str):
        """The bundle's ``uncertainty_scorer`` (``configs/inference.yaml``) with ``num_draws`` draws on ``device``."""
        parser = ConfigParser()
        parser.read_config(os.path.join(self.bundle_path, "configs", "inference.yaml"))
        parser.update({"bundle_root": self.bundle_path, "inference_draws": self.num_draws,
                       "device": torch.device(name_to_device(device))})
        sys.path.insert(0, self.bundle_path)
        try:
            return parser.get_parsed_content("uncertainty_scorer")
        finally:
            sys.path.remove(self.bundle_path)

    def model_version(self) -> int:
        model = os.path.join(self.bundle_path, "models", "model.pt")
        return os.stat(model).st_mtime_ns if os.path.isfile(model) else 0

    def __call__(self, request: dict, datastore: Datastore) -> dict[str, Any]:
        start, version = time.time(), self.model_version()
        images = datastore.get_unlabeled_images()
        stale = [i for i in images if datastore.get_image_info(i).get(f"{SCORE_KEY}_model") != version]
        if stale and version:
            scorer = self._scorer(request.get("device", "cuda"))
            for image_id in stale:
                score = scorer(datastore.get_image_uri(image_id))
                datastore.update_image_info(image_id, {SCORE_KEY: score, f"{SCORE_KEY}_model": version})
                logger.info(f"uncertainty: {image_id} => {score:.4f}")
        summary = {"total": len(images), "scored": len(stale) if version else 0, "latency": round(time.time() - start, 3)}
        logger.info(f"uncertainty scoring: {summary}")
        return summary


class MostUncertain(Strategy):
    """The unlabeled image with the highest ``uncertainty`` score (scoring the unscored ones first)."""

    def __init__(self, scoring: UncertaintyScoring) -> None:
        super().__init__("the unlabeled image the model is least certain about")
        self.scoring = scoring

    def __call__(self, request: dict, datastore: Datastore) -> dict[str, Any] | None:
        images = datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels"))
        if not images:
            return None
        self.scoring(request, datastore)
        scores = {i: datastore.get_image_info(i).get(SCORE_KEY) for i in images}
        scored = sorted(i for i in images if scores[i] is not None)
        if not scored:
            logger.warning("uncertainty: no trained model to score with yet; train first.")
            return None
        image = max(scored, key=lambda i: scores[i])
        return {"id": image, SCORE_KEY: scores[image]}


class BundleApp(MONAILabelApp):
    """One bundle (``--conf models NAME``) served for inference and training, with uncertainty sampling."""

    def __init__(self, app_dir: str, studies: str, conf: dict) -> None:
        self.models = get_bundle_models(app_dir, conf)
        if len(self.models) != 1:
            raise ValueError(f"this app serves one bundle (--conf models NAME), got {list(self.models)}")
        self.uncertainty_scoring = UncertaintyScoring(next(iter(self.models.values())), int(conf.get("uncertainty_draws", "8")))
        super().__init__(
            app_dir=app_dir, studies=studies, conf=conf, name=f"{next(iter(self.models))} (MONAI Label {monailabel.__version__})",
            description="semi-supervised diffusion segmentation with uncertainty sampling", version=monailabel.__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        return {name: BundleInferTask(path, self.conf) for name, path in self.models.items()}

    def init_trainers(self) -> dict[str, TrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        return {name: BundleSettingsTrainTask(path, self.conf) for name, path in self.models.items()}

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random(), "first": First(), SCORE_KEY: MostUncertain(self.uncertainty_scoring)}

    def init_scoring_methods(self) -> dict[str, ScoringMethod]:
        return {SCORE_KEY: self.uncertainty_scoring}
