"""MONAI Label serves and trains the bundle: a real ``monailabel start_server`` (monaibundle app) on loopback,
its infer endpoint on real ACDC slices and a short training through its train endpoint, with labeled and
unlabeled images in its datastore. Needs the MONAI Label environment (bundle/docs/monailabel.md), named by
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
    # the bundle for ACDC on the CPU profile, with random weights, trained briefly when asked
    short = tmp / "short_training.yaml"
    short.write_text(json.dumps(SHORT_TRAINING))
    overlays = [os.path.join(CONFIGS, "datasets", "acdc.yaml"), os.path.join(CONFIGS, "profiles", "cpu_2d.yaml"),
                str(short)]
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, "inference.yaml"), *overlays])
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp / "model.pt")
    build(str(tmp / "diffseg.zip"), model=str(tmp / "model.pt"), overlays=overlays)
    app_dir, name = prepare_app(MONAILABEL, str(tmp / "apps"), str(tmp / "diffseg.zip"))
    # MONAI Label trains through torchrun and multi_gpu_train.yaml where torch counts 2 or more GPUs: in its
    # task processes, this machine counts 2; the processes that torchrun starts still run on the CPU (gloo)
    (tmp / "two_gpus").mkdir()
    (tmp / "two_gpus" / "sitecustomize.py").write_text(TWO_GPUS)
    environment = server_environment(MONAILABEL)
    environment["PYTHONPATH"] = os.pathsep.join([str(tmp / "two_gpus"), environment.get("PYTHONPATH", "")])
    port = free_port()
    log = open(tmp / "server.log", "w")
    process = subprocess.Popen(server_command(MONAILABEL, app_dir, str(studies), name, "127.0.0.1", port),
                               stdout=log, stderr=subprocess.STDOUT, env=environment)
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


def test_the_server_lists_the_bundle_for_inference_and_training(server):
    assert server["name"] in server["info"]["models"] and server["name"] in server["info"]["trainers"]
    labels = server["info"]["models"][server["name"]]["labels"]
    assert labels == {"right_ventricle": 1, "myocardium": 2, "left_ventricle": 3}


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
    status = train(server, {"max_epochs": 1, "device": "cpu", "multi_gpu": False, "val_split": 0.2})
    log = server["log"].read_text()
    assert status.get("status") == "DONE", log[-4000:]
    # 6 labeled images: MONAI Label's training split, and its validation split, which is not trained on as unlabeled
    found = re.search(r"datastore: (\d+) labeled and (\d+) unlabeled images", log)
    assert found and int(found.group(1)) in (4, 5) and int(found.group(2)) == 10, log[-4000:]
    assert os.path.getmtime(model) > before
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
