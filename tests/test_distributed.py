"""Training in two processes on the CPU (gloo), as torchrun launches multi_gpu_train.yaml on several GPUs."""

import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import HANG_TIMEOUT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")
WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")
# gloo over the loopback interface, whatever the host name resolves to
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.path.join(ROOT, "bundle"), "GLOO_SOCKET_IFNAME": "lo"}
TINY = [
    "--synthetic_dataset#num_train", "24", "--synthetic_dataset#num_val", "4", "--synthetic_dataset#num_test", "4",
    "--synthetic_dataset#size", "32", "--spatial_size", "[32,32]", "--label_fraction", "50",
    "--pretrain_epochs", "1", "--max_epochs", "2", "--val_interval", "1", "--rounds", "1",
    "--network_def#channels", "[8,16,16,16]", "--network_def#num_head_channels", "16",
]
BASELINES = {"ours": [], **{m: ["baselines/semi_supervised.yaml", f"baselines/{m}.yaml"] for m in ("cps", "uamt", "cct", "urpc", "bcp")}}


def torchrun(tmp_path, processes, configs, *args, worker=False, run_id="training", succeed=True):
    """Run a workflow of train.yaml in ``processes`` processes with multi_gpu_train.yaml last; returns the log."""
    files = [os.path.join(CONFIGS, c) for c in ["train.yaml", *configs, "multi_gpu_train.yaml"]]
    program = [WORKER, str(tmp_path)] if worker else ["-m", "monai.bundle", "run", run_id]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *program,
        "--config_file", str(files), "--output_dir", str(tmp_path / "eval"), "--ckpt_dir", str(tmp_path / "models"),
        *args,
    ]
    result = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert (result.returncode == 0) == succeed, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_separate_pathway_unets_and_a_launch_without_torchrun_are_refused(tmp_path):
    log = torchrun(tmp_path, 1, ["variants/authors.yaml"], *TINY, succeed=False)
    assert "multi-GPU training needs network_def#shared_body true" in log
    files = [os.path.join(CONFIGS, c) for c in ("train.yaml", "multi_gpu_train.yaml")]
    alone = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(files)],
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert alone.returncode != 0 and "multi_gpu_train.yaml runs under torchrun" in alone.stdout + alone.stderr


@pytest.mark.slow
def test_two_processes_train_validate_and_test_with_one_set_of_outputs(tmp_path):
    log = torchrun(tmp_path, 2, [], *TINY, "--batch_size", "4", "--labeled_batch_size", "2")
    models = sorted(os.listdir(tmp_path / "models"))
    assert models == sorted(["model.pt", "model.run.json", "teacher.pt", "cotrained_teacher.pt", "pretrain_state.pt",
                             "train_state.pt", "test_metrics.json", "run_settings.json", "model_settings.json",
                             "training_flops.json"])
    report = json.loads((tmp_path / "models" / "test_metrics.json").read_text())
    assert report["num_images"] == 4  # both processes' shares of the test split, each image once
    assert report["model"]["run"] == json.loads((tmp_path / "models" / "model.run.json").read_text())
    for stage in ("pretrain", "train"):  # one TensorBoard event file per stage: rank 0's
        assert len(os.listdir(tmp_path / "eval" / "tensorboard" / stage)) == 1
    assert log.count("test report written to") == 1
    state = torch.load(tmp_path / "models" / "train_state.pt", weights_only=False)
    # 12 unlabeled images, 4 per process and iteration: one pass over them is one iteration of each process
    assert state["trainer"]["epoch_length"] == 1 and state["trainer"]["iteration"] == 2

    # resumed under torchrun: one more epoch
    log = torchrun(tmp_path, 2, [], *TINY, "--batch_size", "4", "--labeled_batch_size", "2", "--max_epochs", "3",
                   "--resume", "true")
    assert torch.load(tmp_path / "models" / "train_state.pt", weights_only=False)["trainer"]["iteration"] == 3
    assert "Epoch[3] Complete" in log and "Epoch[2] Complete" not in log

    # evaluated in two processes: the test of the resumed run again
    tested = json.loads((tmp_path / "models" / "test_metrics.json").read_text())
    os.remove(tmp_path / "models" / "test_metrics.json")
    torchrun(tmp_path, 2, ["evaluate.yaml"], *TINY, run_id="evaluating")
    again = json.loads((tmp_path / "models" / "test_metrics.json").read_text())
    assert again["num_images"] == 4 and again["dice"] == tested["dice"]


@pytest.mark.slow
def test_two_processes_train_a_dataset_without_a_test_split(tmp_path):
    """As MONAI Label's multi-GPU path trains from its datastore: no test split, which the test stage skips."""
    log = torchrun(tmp_path, 2, [], *TINY, "--batch_size", "4", "--labeled_batch_size", "2", "--test_data", "$[]")
    assert log.count("no test split: nothing to evaluate") == 2, log[-3000:]   # each process skips it
    assert (tmp_path / "models" / "model.pt").is_file() and not (tmp_path / "models" / "test_metrics.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method", list(BASELINES))
def test_processes_hold_the_same_networks_and_share_out_the_unlabeled_images(tmp_path, method):
    torchrun(tmp_path, 2, BASELINES[method], *TINY, "--batch_size", "2", "--labeled_batch_size", "2", worker=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    first, second = ranks[0]["parameters"], ranks[1]["parameters"]
    assert len(first) == len(second) > 0
    assert all(torch.equal(a, b) for a, b in zip(first, second)), "the processes' networks differ"
    trainer = {"ours": "CoTrainer", "bcp": "BidirectionalCopyPasteTrainer"}.get(method) or next(iter(ranks[0]["iterations"]))
    for epoch in (1, 2):
        seen = [{f for i in rank["iterations"][trainer] if i["epoch"] == epoch for f in i["files"]} for rank in ranks]
        assert len(seen[0]) == len(seen[1]) == 6 and not seen[0] & seen[1]  # 12 unlabeled images shared out
    if method == "ours":
        stage1 = [{f for i in rank["iterations"]["TeacherPretrainer"] for f in i["files"]} for rank in ranks]
        assert len(stage1[0]) == 6 and not stage1[0] & stage1[1]


@pytest.mark.slow
def test_two_processes_reach_the_loss_of_one_with_the_same_global_batch(tmp_path):
    """The supervised baseline without random augmentation, with a fixed time step and plain SGD (Adam's first
    steps are the gradients' signs, which rounding flips where a gradient is nearly zero): two processes with
    2 images each take the same steps as one process with 4, so the losses (the mean over the processes) and
    the networks agree."""
    sgd = {"_target_": "torch.optim.SGD", "params": "$@network.parameters()", "lr": 0.1}
    deterministic = [*TINY, "--label_fraction", "100", "--epoch_length", "3", "--max_epochs", "1",
                     "--random_transforms", "[]", "--train#inferer", "@inferer", "--train#optimizer", str(sgd)]
    runs = {}
    for processes, batch in ((1, 4), (2, 2)):
        folder = tmp_path / f"{processes}_processes"
        folder.mkdir()
        torchrun(folder, processes, ["baselines/supervised.yaml"], *deterministic, "--labeled_batch_size", str(batch),
                 worker=True)
        runs[processes] = [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(processes)]
    losses = {p: torch.tensor([[i["loss"] for i in rank["iterations"]["SupervisedTrainer"]] for rank in ranks]).mean(0)
              for p, ranks in runs.items()}
    assert len(losses[1]) == len(losses[2]) == 3
    assert torch.allclose(losses[1], losses[2], rtol=1e-3), losses
    assert not torch.allclose(losses[1][0], losses[1][-1], rtol=1e-3)  # the steps changed the network
    one, two = (torch.cat([p.flatten() for p in runs[n][0]["parameters"]]) for n in (1, 2))
    start = torch.cat([p.flatten() for p in runs[1][0]["iterations"]["SupervisedTrainer/start"]])
    # what is left is the pure-noise mask at t = 0 (standard deviation 0.01), drawn per process
    assert (one - two).norm() < 0.05 * (one - start).norm()
