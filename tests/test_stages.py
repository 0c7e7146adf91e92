"""The stages hand over through files: stage 1 leaves its teacher as a plain state dict, and a stage whose
result is given (a file that must exist, or a retrain's own earlier file) or not wanted ends as it starts."""

import pytest
import torch
from ignite.engine import Engine, Events

from scripts.stages import StageFromFile, StateDictSaver


def stage(*handlers):
    """An engine of 2 iterations that counts them and its completion, with ``handlers`` attached."""
    engine = Engine(lambda engine, batch: None)
    engine.state.completed = False
    engine.add_event_handler(Events.COMPLETED, lambda e: setattr(e.state, "completed", True))
    for handler in handlers:
        handler.attach(engine)
    engine.run([0, 1], max_epochs=1)
    return engine


def test_a_finished_stage_leaves_its_network_and_a_later_stage_loads_it_instead_of_training(tmp_path):
    trained = torch.nn.Conv2d(1, 2, 1)
    stage(StateDictSaver(str(tmp_path), {"teacher.pt": trained}))
    fresh = torch.nn.Conv2d(1, 2, 1)
    engine = stage(StageFromFile(fresh, load_path=str(tmp_path / "teacher.pt")))
    assert engine.state.iteration == 0 and not engine.state.completed   # no training, no completion handlers
    assert torch.equal(fresh.weight, trained.weight)


def test_a_stage_given_no_file_trains_unless_it_is_not_wanted(tmp_path):
    assert stage(StageFromFile(torch.nn.Conv2d(1, 2, 1))).state.iteration == 2
    assert stage(StageFromFile(torch.nn.Conv2d(1, 2, 1), reuse_path=str(tmp_path / "none.pt"))).state.iteration == 2
    engine = stage(StageFromFile(torch.nn.Conv2d(1, 2, 1), train=False))
    assert engine.state.iteration == 0 and not engine.state.completed


def test_a_retrain_reuses_its_own_earlier_result_where_it_exists(tmp_path):
    torch.save(torch.nn.Conv2d(1, 2, 1).state_dict(), tmp_path / "teacher.pt")
    assert stage(StageFromFile(torch.nn.Conv2d(1, 2, 1), reuse_path=str(tmp_path / "teacher.pt"))).state.iteration == 0


def test_a_given_file_that_is_missing_or_of_another_network_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--teacher_checkpoint .*none\.pt does not exist"):
        stage(StageFromFile(torch.nn.Conv2d(1, 2, 1), load_path=str(tmp_path / "none.pt")))
    torch.save(torch.nn.Conv2d(1, 3, 1).state_dict(), tmp_path / "three.pt")
    with pytest.raises(ValueError, match=r"three\.pt holds a network of another shape"):
        stage(StageFromFile(torch.nn.Conv2d(1, 2, 1), load_path=str(tmp_path / "three.pt")))
