import json

import pytest
import torch
from ignite.engine import Engine, Events

from scripts.distributed import MainProcessHandlers
from scripts.checkpoints import AtomicCheckpointSaver, ModelProvenance, ResumeCheckpointLoader, RunIdentity
from scripts.handlers import PeriodicValidation


class CountingValidator:
    def __init__(self):
        self.epochs = []

    def run(self, epoch):
        self.epochs.append(epoch)


@pytest.mark.parametrize("max_epochs, interval, expected", [(5, 2, [2, 4, 5]), (3, 5, [3]), (4, 2, [2, 4])])
def test_validation_runs_every_interval_and_after_the_last_epoch(max_epochs, interval, expected):
    validator = CountingValidator()
    handler = PeriodicValidation(interval=interval)
    handler.validator = validator
    trainer = Engine(lambda engine, batch: None)
    handler.attach(trainer)
    trainer.run([0], max_epochs=max_epochs)
    assert validator.epochs == expected


@pytest.mark.parametrize("main_process", [True, False])
def test_main_process_handlers_are_attached_and_made_on_the_main_process_only(main_process):
    made, seen = [], []

    class Recorder:
        def attach(self, engine):
            engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.iteration))

    def make():  # a handler whose making writes a file (a TensorBoard writer)
        made.append(True)
        return Recorder()

    trainer = Engine(lambda engine, batch: None)
    MainProcessHandlers([Recorder(), make], main_process=main_process).attach(trainer)
    trainer.run([0, 1], max_epochs=1)
    assert made == ([True] if main_process else [])
    assert seen == ([1, 1, 2, 2] if main_process else [])


def test_a_model_written_by_another_run_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    this_run, other_run = RunIdentity(), RunIdentity()
    torch.save({}, path)
    (tmp_path / "model.run.json").write_text(json.dumps(other_run.state_dict()))
    engine = Engine(lambda engine, batch: None)
    ModelProvenance(str(path), this_run).attach(engine)
    with pytest.raises(RuntimeError, match="not written by this run"):
        engine.run([0])
    (tmp_path / "model.run.json").write_text(json.dumps(this_run.state_dict()))
    engine.run([0])                                    # its own model passes
    evaluate = Engine(lambda engine, batch: None)      # evaluate.yaml: any model, but one must exist
    ModelProvenance(str(tmp_path / "missing.pt"), this_run, require_this_run=False).attach(evaluate)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        evaluate.run([0])


def test_a_resumed_run_takes_back_its_identity():
    first, resumed = RunIdentity(), RunIdentity()
    assert first.state_dict() != resumed.state_dict()
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict() == first.state_dict()


def _resume(path, load_dict):
    engine = Engine(lambda engine, batch: None)
    ResumeCheckpointLoader(str(path), load_dict).attach(engine)
    engine.run([0], max_epochs=1)


def test_a_checkpoint_holds_what_the_trainer_declares_and_a_resume_restores_it(tmp_path):
    class Trainer(Engine):
        def __init__(self):
            super().__init__(lambda engine, batch: None)
            self.student = torch.nn.Conv2d(1, 2, 1)

        def checkpoint_state(self):
            return {"student": self.student}

    first, second = Trainer(), Trainer()
    saver = AtomicCheckpointSaver(str(tmp_path), {"scheduler": None, "run": RunIdentity()}, engine_key="trainer",
                                  save_interval=1, interval_filename="train_state.pt")
    saver.attach(first)
    first.run([0], max_epochs=1)
    assert set(torch.load(tmp_path / "train_state.pt", weights_only=False)) == {"student", "run", "trainer"}
    ResumeCheckpointLoader(str(tmp_path / "train_state.pt"), {"scheduler": None, "run": RunIdentity()},
                           engine_key="trainer").attach(second)
    second.run([0], max_epochs=1)
    assert torch.equal(second.student.weight, first.student.weight) and second.state.iteration == 1


def test_resume_errors_name_the_checkpoint_and_the_settings(tmp_path):
    path = tmp_path / "train_state.pt"
    torch.save({"network": torch.nn.Conv2d(1, 3, 1).state_dict()}, path)
    with pytest.raises(ValueError, match=r"train_state\.pt holds a network of another shape .*\(num_classes"):
        _resume(path, {"network": torch.nn.Conv2d(1, 4, 1)})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*train_state\.pt .* truncated"):
        _resume(path, {"network": torch.nn.Conv2d(1, 3, 1)})


def test_resume_keeps_the_checkpoints_learning_rate_and_says_so(tmp_path, caplog):
    network = torch.nn.Conv2d(1, 3, 1)
    path = tmp_path / "train_state.pt"
    torch.save({"network": network.state_dict(), "optimizer": torch.optim.SGD(network.parameters(), 0.1).state_dict()}, path)
    optimizer = torch.optim.SGD(network.parameters(), 0.5)
    with caplog.at_level("WARNING"):
        _resume(path, {"network": network, "optimizer": optimizer})
    assert optimizer.param_groups[0]["lr"] == 0.1 and "learning rate [0.1], not the configured [0.5]" in caplog.text


def test_output_folders_are_checked_and_cleared_of_half_written_files_before_any_work(tmp_path):
    from scripts.atomic import prepare_output_folder

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / ".tmp-abc-model.pt").write_bytes(b"")
    (tmp_path / "models" / "model.pt").write_bytes(b"kept")
    prepare_output_folder(tmp_path / "models")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["model.pt"]
    (tmp_path / "a_file").write_text("")
    with pytest.raises(PermissionError, match=r"cannot write to .*a_file/out"):
        prepare_output_folder(tmp_path / "a_file" / "out")
    prepare_output_folder(tmp_path / "new" / "models")
    assert not (tmp_path / "new").exists()   # created by the first write, after the data are checked


def test_pooled_dice_counts_every_pixel_together(tmp_path):
    from monai.handlers import MeanDice, from_engine
    from monai.networks.utils import one_hot

    from scripts.handlers import SegmentationReport
    from scripts.metrics import PooledConfusionMatrix

    target = torch.zeros(2, 1, 4, 5)
    target[0, 0, :, :] = 1          # case 1: all 20 pixels foreground, predicted right
    prediction = target.clone()
    target[1, 0, :, 4] = 1          # case 2: 4 foreground pixels missed, 8 false positives
    prediction[1, 0, :, :2] = 1
    batches = [{"pred": one_hot(prediction[i:i + 1], 2), "label": one_hot(target[i:i + 1], 2)} for i in range(2)]
    engine = Engine(lambda engine, batch: batch)
    transform = from_engine(["pred", "label"])
    MeanDice(include_background=False, output_transform=transform).attach(engine, "dice")
    PooledConfusionMatrix("f1 score", output_transform=transform).attach(engine, "pooled_dice")
    SegmentationReport(str(tmp_path / "report.json"), {"dice": "dice", "pooled_dice": "pooled_dice"}).attach(engine)
    engine.run(batches)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dice"]["mean"] == pytest.approx(0.5) and report["dice"]["count"] == 2   # 1 and 0 per image
    assert report["pooled_dice"]["mean"] == pytest.approx(2 * 20 / (2 * 20 + 8 + 4))      # pooled: 40 / 52
    assert report["pooled_dice"]["per_class"]["class_1"] == pytest.approx(40 / 52)
    assert engine.state.metrics["pooled_dice"] == pytest.approx(40 / 52)   # a scalar, as trackers log it


def test_a_model_file_that_is_missing_a_folder_empty_or_of_another_network_is_named(tmp_path):
    from scripts.checkpoints import CheckedCheckpointLoader, load_weights

    def load(path):
        engine = Engine(lambda engine, batch: None)
        CheckedCheckpointLoader(str(path), {"model": torch.nn.Conv2d(1, 4, 1)}).attach(engine)
        engine.run([0], max_epochs=1)

    with pytest.raises(FileNotFoundError, match=f"--model_path {tmp_path} is a folder, not a checkpoint file"):
        load(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*empty\.pt \(--model_path; .*empty, truncated"):
        load(tmp_path / "empty.pt")
    torch.save(torch.nn.Conv2d(1, 3, 1).state_dict(), tmp_path / "three.pt")
    with pytest.raises(ValueError, match=r"three\.pt holds a network of another shape .*size mismatch.*\(num_classes"):
        load(tmp_path / "three.pt")
    torch.save(torch.nn.Linear(1, 3).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt holds a network of another shape"):
        load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match=r"--teacher_checkpoint .*none\.pt does not exist"):
        load_weights(torch.nn.Conv2d(1, 3, 1), str(tmp_path / "none.pt"), "teacher_checkpoint")
    assert load_weights(torch.nn.Conv2d(1, 3, 1), str(tmp_path / "three.pt"), "teacher_checkpoint") is not None
