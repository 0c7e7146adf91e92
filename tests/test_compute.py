"""Training compute: one iteration counted, times the stage's iterations in all processes."""

import json

import torch
from ignite.engine import Engine

from scripts.compute import TrainingFlops, total_flops


def test_one_iteration_is_counted_and_multiplied_by_the_stages_iterations(tmp_path):
    layer = torch.nn.Linear(4, 3, bias=False)
    calls = []

    def step(engine, batch):
        calls.append(1)
        layer(batch).sum().backward()   # forward 2 x 2 x 4 x 3 = 48 operations; the weight's gradient 48 more

    engine = Engine(step)
    path = tmp_path / "training_flops.json"
    path.write_text(json.dumps({"pretrain": {"flops_per_iteration": 10, "iterations": 5, "flops": 50}}))
    TrainingFlops(str(path), "train", num_processes=2).attach(engine)
    engine.run([torch.ones(2, 4)] * 3, max_epochs=2)
    recorded = json.loads(path.read_text())
    assert len(calls) == 6 and recorded["train"] == {"flops_per_iteration": 96, "iterations": 12, "flops": 1152}
    assert recorded["pretrain"]["flops"] == 50 and total_flops(str(path)) == 1202
    assert total_flops(str(tmp_path / "missing.json")) is None
