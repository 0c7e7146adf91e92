import json

import torch
from ignite.engine import Engine
from torch.utils.tensorboard import SummaryWriter

from scripts.monitoring import StageMonitoring


def _step(engine, batch):
    return {"loss": torch.tensor(0.5), "scalars": {"loss/total": 0.5},
            "image": torch.rand(2, 1, 8, 8), "pred": torch.rand(2, 2, 8, 8)}


def test_stage_monitoring_writes_the_stage_files_in_the_main_process_only(tmp_path):
    network = torch.nn.Linear(2, 2)
    for main_process in (False, True):
        folder = tmp_path / ("main" if main_process else "other")
        trainer = Engine(_step)
        trainer.network, trainer.optimizer = network, torch.optim.SGD(network.parameters(), 0.1)
        schedule = torch.optim.lr_scheduler.StepLR(trainer.optimizer, 1)
        StageMonitoring(
            "pretrain", str(folder / "models"), str(folder), SummaryWriter(folder / "tb") if main_process else None,
            state={"lr_scheduler": schedule}, snapshot_prefix="snapshot",
            snapshot_columns={"image": "image", "mask": "pred"}, progress_figure="progress.png",
            result_files={"teacher.pt": network}, main_process=main_process,
        ).attach(trainer)
        trainer.run([0, 1], max_epochs=2)
    assert not (tmp_path / "other").exists()
    models, figures = tmp_path / "main" / "models", tmp_path / "main" / "figures"
    state = torch.load(models / "pretrain_state.pt", weights_only=False)
    assert state["trainer"]["iteration"] == 4 and set(state) == {"trainer", "network", "optimizer", "lr_scheduler"}
    assert torch.equal(torch.load(models / "teacher.pt")["weight"], network.weight)
    assert set(json.loads((models / "training_flops.json").read_text())) == {"pretrain"}
    assert (figures / "progress.png").is_file() and (figures / "snapshot_epoch_0002.png").is_file()
    assert json.loads((figures / "progress.json").read_text())["loss/total"] == {"1": 0.5, "2": 0.5}
