"""One process of a torchrun launch for tests/test_distributed.py: runs a bundle training workflow as
``python -m monai.bundle run training`` does, and saves to ``OUTPUT/rank<r>.pt`` what this process trained
(every parameter of the trained modules, and of an EMA teacher, at the end) and on what (the images and the loss of each iteration).

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py OUTPUT \\
        --config_file "[...]" --id value ...
"""

import ast
import os
import sys

import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow
from monai.engines import SupervisedTrainer


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _record_iterations(records: dict) -> None:
    """Every trainer's run records, per iteration, its epoch, the files of its batch and its loss, and the
    parameters of its optimizer as it starts (under ``"<trainer>/start"``)."""
    original_run = SupervisedTrainer.run

    def run(trainer, *args, **kwargs):
        name = type(trainer).__name__
        iterations = records.setdefault(name, [])
        records[f"{name}/start"] = [p.detach().cpu().clone() for g in trainer.optimizer.param_groups for p in g["params"]]

        def record(engine):
            files = engine.state.batch["image"].meta["filename_or_obj"]
            iterations.append({"epoch": engine.state.epoch, "files": list(files), "loss": engine.state.output["loss"].item()})

        trainer.add_event_handler(Events.ITERATION_COMPLETED, record)
        return original_run(trainer, *args, **kwargs)

    SupervisedTrainer.run = run


def main() -> None:
    output, arguments = sys.argv[1], sys.argv[2:]
    options = {key[2:]: _value(value) for key, value in zip(arguments[::2], arguments[1::2])}
    records: dict = {}
    _record_iterations(records)
    workflow = ConfigWorkflow(workflow_type="train", run_id="training", **options)
    workflow.initialize()
    workflow.run()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    optimizers = [trainer.optimizer, getattr(trainer, "teacher_optimizer", None)]
    parameters = [p for o in optimizers if o is not None for group in o.param_groups for p in group["params"]]
    if isinstance(getattr(trainer, "teacher", None), torch.optim.swa_utils.AveragedModel):  # UA-MT's EMA teacher
        parameters += list(trainer.teacher.parameters())
    parameters = [p.detach().cpu().clone() for p in parameters]
    rank = torch.distributed.get_rank()
    torch.save({"parameters": parameters, "iterations": records}, os.path.join(output, f"rank{rank}.pt"))
    workflow.finalize()


if __name__ == "__main__":
    main()
