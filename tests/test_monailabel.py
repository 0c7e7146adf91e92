"""MONAI Label serves and trains the bundle: a real ``monailabel start_server`` (the bundle's app) on loopback,
its infer endpoint on real ACDC slices, short trainings through its train endpoint with the train panel's
settings, with labeled and unlabeled images in its datastore, and uncertainty sampling. Needs the MONAI Label environment (bundle/docs/monailabel.md), named by
MONAILABEL (default: .venv-monailabel/bin/monailabel in the repository); slow, so it runs only when selected:
    python -m pytest -m monailabel
"""

import gzip
import io
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import nibabel
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

from scripts.label_server import prepare_app, server_command, server_environment
from scripts.package import build

pytestmark = pytest.mark.monailabel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")
ACDC = os.path.join(ROOT, "..", "shared", "data", "ACDC")
MONAILABEL = os.environ.get("MONAILABEL", os.path.join(ROOT, ".venv-monailabel", "bin", "monailabel"))
SHORT_TRAINING = {"pretrain_epochs": 1, "epoch_length": 2, "val_interval": 1, "batch_size": 2,
                  "labeled_batch_size": 2}
DRAWS = 4                     # noise draws per image for uncertainty sampling


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method="GET", body=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def read_label(content):
    """The label MONAI Label returned, a PNG or a (gzipped) NIfTI file, as an array."""
    if content[:8] == b"\x89PNG\r\n\x1a\n":
        return np.asarray(Image.open(io.BytesIO(content)))
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    return np.squeeze(np.asarray(nibabel.Nifti1Image.from_bytes(content).dataobj))


TWO_GPUS = """import os
with open(f"/proc/{os.getpid()}/cmdline", "rb") as f:
    if b"monailabel.interfaces.utils.app" in f.read().split(b"\\0"):
        import torch
        torch.cuda.device_count = lambda: 2
        torch.cuda.get_device_name = lambda device=None: "counted GPU"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.isfile(MONAILABEL):
        pytest.fail(f"MONAI Label is not installed at {MONAILABEL}: see bundle/docs/monailabel.md, or set MONAILABEL.")
    if not os.path.isdir(ACDC):
        pytest.fail(f"the MONAI Label test needs the ACDC slices in {ACDC}.")
    tmp = tmp_path_factory.mktemp("monailabel")
    # a datastore: slices of four patients, labels for six of them
    studies = tmp / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    names = [n for n in sorted(os.listdir(os.path.join(ACDC, "images")))
             if n.startswith(("patient001_frame01", "patient002_frame01", "patient003_frame01", "patient004_frame01"))]
    for i, name in enumerate(names[:16]):
        shutil.copy(os.path.join(ACDC, "images", name), studies / name)
        if i % 2 == 0 and i < 12:
            shutil.copy(os.path.join(ACDC, "masks", name), studies / "labels" / "final" / name)
    # an unlabeled image unlike any slice: noise, which the uncertainty ranking should tell apart
    noise = np.random.default_rng(0).integers(0, 256, (216, 256)).astype(np.uint8)
    Image.fromarray(noise).save(studies / "noise.png")
    # the bundle for ACDC on the CPU profile, with random weights, trained briefly when asked
    short = tmp / "short_training.yaml"
    short.write_text(json.dumps(SHORT_TRAINING))
    overlays = [os.path.join(CONFIGS, "datasets", "acdc.yaml"), os.path.join(CONFIGS, "profiles", "cpu_2d.yaml"),
                str(short)]
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, "inference.yaml"), *overlays])
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp / "model.pt")
    build(str(tmp / "diffseg.zip"), model=str(tmp / "model.pt"), overlays=overlays)
    app_dir, name = prepare_app(str(tmp / "apps"), str(tmp / "diffseg.zip"))
    # MONAI Label trains through torchrun and multi_gpu_train.yaml where torch counts 2 or more GPUs: in its
    # task processes, this machine counts 2; the processes that torchrun starts still run on the CPU (gloo)
    (tmp / "two_gpus").mkdir()
    (tmp / "two_gpus" / "sitecustomize.py").write_text(TWO_GPUS)
    environment = server_environment(MONAILABEL)
    environment["PYTHONPATH"] = os.pathsep.join([str(tmp / "two_gpus"), environment.get("PYTHONPATH", "")])
    port = free_port()
    log = open(tmp / "server.log", "w")
    process = subprocess.Popen(
        server_command(MONAILABEL, app_dir, str(studies), name, "127.0.0.1", port, uncertainty_draws=DRAWS),
        stdout=log, stderr=subprocess.STDOUT, env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        try:
            info = json.loads(call(f"{url}/info/", timeout=10))
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("MONAI Label did not start:\n" + (tmp / "server.log").read_text()[-4000:])
            time.sleep(2)
    yield {"url": url, "info": info, "name": name, "studies": studies, "bundle": os.path.join(app_dir, "model", name),
           "log": tmp / "server.log", "unlabeled": names[15].rsplit(".", 1)[0]}
    process.terminate()
    process.wait(timeout=60)
    log.close()


def test_the_server_lists_the_bundle_for_inference_training_and_active_learning(server):
    info = server["info"]
    assert server["name"] in info["models"] and server["name"] in info["trainers"]
    labels = info["models"][server["name"]]["labels"]
    assert labels == {"right_ventricle": 1, "myocardium": 2, "left_ventricle": 3}
    assert "uncertainty" in info["strategies"] and "uncertainty" in info["scoring"]
    panel = info["trainers"][server["name"]]["config"]  # as a datastore training sets them (cpu_2d, short)
    assert {k: panel[k] for k in ("pretrain_epochs", "rounds", "lambda_max", "datastore_label_fraction")} == {
        "pretrain_epochs": 1, "rounds": 1, "lambda_max": 1.0, "datastore_label_fraction": 100}


def test_infer_endpoint_returns_a_label_of_the_image_size(server):
    image_id = server["unlabeled"]
    content = call(f"{server['url']}/infer/{server['name']}?image={image_id}&output=image", method="POST")
    label = read_label(content)
    image = np.asarray(Image.open(server["studies"] / f"{image_id}.png"))
    assert label.shape == image.shape or label.T.shape == image.shape
    assert set(np.unique(label)) <= {0, 1, 2, 3}


def train(server, request):
    """Ask the train endpoint to train and wait (at most 10 minutes) until it is done; its last status."""
    call(f"{server['url']}/train/{server['name']}", method="POST", body=request)
    deadline = time.time() + 600
    while True:
        status = json.loads(call(f"{server['url']}/train/?check_if_running=false", timeout=30))
        if status.get("status") in ("DONE", "ERROR") or time.time() > deadline:
            break
        time.sleep(5)
    return status


def test_train_endpoint_trains_on_labeled_and_unlabeled_images(server):
    model = os.path.join(server["bundle"], "models", "model.pt")
    before = os.path.getmtime(model)
    status = train(server, {"max_epochs": 1, "device": "cpu", "multi_gpu": False, "val_split": 0.2,
                            "lambda_max": 0.5, "datastore_label_fraction": 50})
    log = server["log"].read_text()
    assert status.get("status") == "DONE", log[-4000:]
    # 6 labeled images: MONAI Label's training split (5 or 4), half of which keep their labels, and its validation
    # split, which is not trained on as unlabeled
    found = re.search(r"datastore: (\d+) labeled and (\d+) unlabeled images", log)
    assert found, log[-4000:]
    labeled, unlabeled = int(found.group(1)), int(found.group(2))
    assert labeled in (2, 3) and labeled + unlabeled in (15, 16) and unlabeled >= 11, log[-4000:]
    assert os.path.getmtime(model) > before
    # the panel's max_epochs is the ramp's length too, and its lambda_max the ramp's end: lambda 0.5 in epoch 1 of 1
    with open(os.path.join(server["bundle"], "eval", "figures", "progress.json")) as f:
        assert json.load(f)["lambda"] == {"1": 0.5}
    content = call(f"{server['url']}/infer/{server['name']}?image={server['unlabeled']}&output=image", method="POST")
    assert read_label(content).size > 0


def test_train_endpoint_trains_in_two_processes_through_the_multi_gpu_path(server):
    """MONAI Label's default (multi_gpu) on a machine that counts two GPUs: torchrun with two processes and
    configs/multi_gpu_train.yaml, which train with gloo on the CPU here."""
    model = os.path.join(server["bundle"], "models", "model.pt")
    before, log_before = os.path.getmtime(model), len(server["log"].read_text())
    status = train(server, {"max_epochs": 1, "device": "cpu", "val_split": 0.4})
    log = server["log"].read_text()[log_before:]
    assert status.get("status") == "DONE", log[-4000:]
    assert "'--nproc_per_node=2'" in log and "multi_gpu_train.yaml" in log, log[-4000:]
    assert "Return code: 0" in log, log[-4000:]  # MONAI Label reports torchrun's exit status but does not check it
    assert log.count("CoTrainer - INFO - Engine run resuming") == 2, log[-4000:]  # one co-training per process
    assert os.path.getmtime(model) > before


def train_known_uncertainties(bundle, studies, uncertain, steps=80):
    """The served network trained briefly (supervised, mask pathway, as inference.yaml runs it) on the labeled
    slices and on the image ``uncertain`` labeled twice, all right ventricle and all myocardium: the best it
    can do there is 1/2 each, normalised entropy log 2 / log 4 = 0.5, while the slices become fairly certain."""
    from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Resize

    torch.manual_seed(0)
    parser = ConfigParser()
    parser.read_config(os.path.join(bundle, "configs", "inference.yaml"))
    parser["inference_draws"] = 1
    network, inferer = parser.get_parsed_content("network_def"), parser.get_parsed_content("inferer")
    preprocessing = parser.get_parsed_content("preprocessing")
    size = parser.get_parsed_content("spatial_size")
    load_label = Compose([LoadImage(image_only=True), EnsureChannelFirst(), Resize(size, mode="nearest")])
    names = sorted(os.listdir(studies / "labels" / "final"))
    conflicting = preprocessing({"image": str(studies / uncertain)})["image"]
    images = torch.stack([preprocessing({"image": str(studies / n)})["image"] for n in names] + [conflicting] * 2)
    labels = torch.stack([load_label(str(studies / "labels" / "final" / n))[0].long() for n in names]
                         + [torch.full(size, 1), torch.full(size, 2)])
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.nll_loss(torch.log(inferer(images, network).clamp_min(1e-8)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(network.state_dict(), os.path.join(bundle, "models", "model.pt"))


def test_uncertainty_strategy_serves_the_most_uncertain_unlabeled_image(server, tmp_path):
    """The next sample is the unlabeled image with the highest mean normalised entropy over the noise draws: the
    noise image, trained to be uncertain (about 0.5), as the documented inference command measures it (its
    uncertainty maps, 0..255) with the served model."""
    train_known_uncertainties(server["bundle"], server["studies"], "noise.png")
    labeled = {os.path.splitext(n)[0] for n in os.listdir(server["studies"] / "labels" / "final")}
    images = tmp_path / "unlabeled"
    images.mkdir()
    for name in os.listdir(server["studies"]):
        if name.endswith(".png") and os.path.splitext(name)[0] not in labeled:
            shutil.copy(server["studies"] / name, images / name)
    parser = ConfigParser()
    parser.read_config(os.path.join(server["bundle"], "configs", "inference.yaml"))
    for key, value in {"bundle_root": server["bundle"], "input_path": str(images), "output_dir": str(tmp_path / "maps"),
                       "save_uncertainty": True, "inference_draws": DRAWS, "device": torch.device("cpu")}.items():
        parser[key] = value
    parser.get_parsed_content("evaluator").run()
    expected = {name[: -len("_uncertainty.png")]: np.asarray(Image.open(tmp_path / "maps" / name)).mean() / 255
                for name in os.listdir(tmp_path / "maps") if name.endswith("_uncertainty.png")}
    assert len(expected) == 11
    first, second = sorted(expected, key=expected.get, reverse=True)[:2]
    assert first == "noise" and expected[first] > 0.4 and expected[first] - expected[second] > 0.1, expected

    deadline = time.time() + 300
    while True:  # MONAI Label scores by itself after each training; a second scoring waits for that one
        try:
            call(f"{server['url']}/scoring/uncertainty?run_sync=true", method="POST", timeout=600)
            break
        except urllib.error.HTTPError as error:
            if error.code != 429 or time.time() > deadline:
                raise
            time.sleep(5)
    sample = json.loads(call(f"{server['url']}/activelearning/uncertainty", method="POST", body={}))
    assert sample["id"] == first, (sample, expected)
    assert abs(sample["uncertainty"] - expected[first]) < 0.01, (sample, expected)
