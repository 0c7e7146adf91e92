"""The stages hand over through files: stage 1 leaves its teacher as a plain state dict, and a stage whose
result is given (a file that must exist, or a retrain's own earlier file) or not wanted ends as it starts.
Every workflow runs the same steps; a method's overlay says which stages it has."""

import os

import pytest
import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.engines import SupervisedEvaluator

from scripts.stages import Evaluation, StageFromFile, StateDictSaver, report_outputs

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "bundle", "configs")


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


def test_the_test_stage_evaluates_a_split_and_says_where_there_is_none(caplog):
    evaluated = []
    for items in ([], [{"image": torch.zeros(1, 4, 4)}]):
        evaluator = SupervisedEvaluator("cpu", torch.utils.data.DataLoader(items), torch.nn.Identity(),
                                        iteration_update=lambda engine, batch: evaluated.append(batch))
        with caplog.at_level("INFO", logger="scripts.stages"):
            Evaluation(evaluator).run()
    assert len(evaluated) == 1 and "no test split: nothing to evaluate" in caplog.text


def test_the_outputs_line_names_only_what_the_run_wrote(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"")
    report_outputs(str(tmp_path / "models"), str(tmp_path / "eval"))
    assert capsys.readouterr().out.strip() == f"outputs: model {tmp_path / 'models' / 'model.pt'}"


@pytest.mark.parametrize("overlays, stages", [
    ([], ["@pretrain#trainer", "@train#trainer", "@test#evaluation"]),
    (["pretrain.yaml"], ["@pretrain#trainer"]),
    (["baselines/supervised.yaml"], ["@train#trainer", "@test#evaluation"]),
    (["baselines/semi_supervised.yaml", "baselines/cps.yaml"], ["@train#trainer", "@test#evaluation"]),
    (["baselines/semi_supervised.yaml", "baselines/bcp.yaml"], ["@pretrain#trainer", "@train#trainer", "@test#evaluation"]),
    (["variants/student_warmup.yaml"], ["@student_warmup#trainer", "@pretrain#trainer", "@train#trainer", "@test#evaluation"]),
    (["baselines/constant.yaml"], [{"_target_": "scripts.stages.ModelWriting", "network": "@network",
                                    "path": "@test#model_path", "run_identity": "@run_identity"}, "@test#evaluation"]),
])
def test_every_workflow_runs_the_same_plain_steps_and_its_overlay_names_its_stages(overlays, stages):
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, name) for name in ["train.yaml", *overlays]])
    assert parser["stages"] == stages
    run = parser["run"]
    assert run[0] == "@preflight" and run[1] == "$[stage.run() for stage in @stages]" and len(run) == 3
    assert not any(" if " in step for step in run if isinstance(step, str))   # no step decides whether it runs


@pytest.mark.slow
def test_the_student_warmup_hands_co_training_a_student_that_learned_the_labeled_mixes(tmp_path):
    tiny = {"synthetic_dataset#num_train": 24, "synthetic_dataset#num_val": 4, "synthetic_dataset#num_test": 4,
            "synthetic_dataset#size": 32, "spatial_size": [32, 32], "batch_size": 4, "labeled_batch_size": 2,
            "epoch_length": 2, "pretrain_epochs": 1, "max_epochs": 1, "val_interval": 1, "rounds": 1}
    workflow = ConfigWorkflow(
        config_file=[os.path.join(CONFIGS, name) for name in ["train.yaml", "variants/student_warmup.yaml"]],
        workflow_type="train", output_dir=str(tmp_path / "eval"), ckpt_dir=str(tmp_path / "models"), **tiny)
    workflow.initialize()
    built = {k: v.clone() for k, v in workflow.parser.get_parsed_content("network_def").state_dict().items()}
    started = {}
    workflow.parser.get_parsed_content("train#trainer").add_event_handler(
        Events.STARTED, lambda engine: started.update({k: v.clone() for k, v in engine.network.state_dict().items()}))
    workflow.run()
    warmup = torch.load(tmp_path / "models" / "student_warmup_state.pt", weights_only=False)
    assert warmup["trainer"]["iteration"] == 2
    assert all(torch.equal(started[k], v) for k, v in warmup["network"].items())   # co-training continues it
    assert not all(torch.equal(built[k], v) for k, v in warmup["network"].items())   # which the warm-up trained
