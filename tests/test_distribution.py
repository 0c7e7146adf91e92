"""What model-zoo bundles pass: metadata against the schema, network input/output, TorchScript and ONNX
exports that match the eager network, and the bundle zip downloaded over loopback and run from elsewhere."""

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import zipfile

import numpy as np
import onnxruntime
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import load_net_with_metadata
from PIL import Image

from scripts.package import build, file_hash
from test_bundle import TINY
from helpers import HANG_TIMEOUT, VOLUME_LA

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(ROOT, "bundle")
ACDC_IMAGES = os.path.join(ROOT, "..", "shared", "data", "ACDC", "images")
LA_META = ["--_meta_#network_data_format#inputs#image#spatial_shape", "[64,64,32]",
           "--_meta_#network_data_format#outputs#pred#num_channels", "2"]


def monai_bundle(*args, cwd=BUNDLE):
    result = subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def network(configs):
    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE, "configs", c) for c in configs])
    return parser.get_parsed_content("network_def").eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "model.pt"
    torch.manual_seed(1)
    torch.save(network(["inference.yaml"]).state_dict(), path)
    return path


@pytest.mark.slow
def test_metadata_verifies_offline_against_the_schema_in_the_bundle(tmp_path):
    log = monai_bundle("verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", "docs/metadata_schema.json")
    assert "metadata is verified with no error" in log and "skipped downloading" in log
    with open(os.path.join(BUNDLE, "configs", "metadata.json")) as f:
        broken = json.load(f)
    del broken["network_data_format"]["outputs"]["pred"]["channel_def"]
    (tmp_path / "metadata.json").write_text(json.dumps(broken))
    result = subprocess.run([sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file",
                             str(tmp_path / "metadata.json"), "--filepath", "docs/metadata_schema.json"],
                            cwd=BUNDLE, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode != 0 and "channel_def" in result.stdout + result.stderr


def test_metadata_readme_and_setup_name_the_same_dependencies():
    """metadata.json's packages are what the package installs and what the README tells bundle users to install."""
    with open(os.path.join(BUNDLE, "configs", "metadata.json")) as f:
        metadata = json.load(f)
    with open(os.path.join(ROOT, "setup.cfg")) as f:
        requires = f.read().split("install_requires =")[1].split("\n\n")[0].split()
    installed = {re.split("[<>=]", r)[0].lower() for r in requires}
    with open(os.path.join(BUNDLE, "docs", "README.md")) as f:
        readme = f.read()
    line = readme.split("## Use a downloaded bundle")[1].split("pip install ")[1].split("\n\n")[0]
    documented = {re.split("[<>=]", w.strip('"\\'))[0].lower() for w in line.split()} - {""}
    packages = {p.lower() for p in metadata["required_packages_version"]} | {"torch", "monai"}
    assert packages == installed == documented


@pytest.mark.parametrize("configs,extra", [
    ("configs/inference.yaml", []),
    ("['configs/inference.yaml','configs/datasets/volumes.yaml','configs/datasets/la.yaml','configs/profiles/cpu_3d.yaml']", LA_META),
])
def test_network_input_and_output_match_the_metadata(configs, extra):
    log = monai_bundle("verify_net_in_out", "network_def", "--meta_file", "configs/metadata.json",
                       "--config_file", configs, *extra)
    assert "data shape of network is verified with no error" in log


@pytest.mark.slow
def test_torchscript_and_onnx_exports_match_the_eager_network(tmp_path, weights):
    common = ["--ckpt_file", str(weights), "--meta_file", "configs/metadata.json", "--config_file",
              "configs/inference.yaml", "--use_trace", "true", "--input_shape", "[1,1,64,64]"]
    monai_bundle("ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts"), *common)
    monai_bundle("onnx_export", "network_def", "--filepath", str(tmp_path / "model.onnx"), *common)
    eager = network(["inference.yaml"])
    eager.load_state_dict(torch.load(weights, weights_only=True))
    image = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = eager(image)
        scripted = torch.jit.load(str(tmp_path / "model.ts"))
        assert torch.allclose(scripted(image), expected, atol=1e-5)
        assert torch.allclose(scripted(image.repeat(3, 1, 1, 1)), expected.repeat(3, 1, 1, 1), atol=1e-5)
    _, metadata, _ = load_net_with_metadata(str(tmp_path / "model.ts"))
    assert metadata["network_data_format"]["outputs"]["pred"]["num_channels"] == 3   # the bundle's metadata rides along
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    np.testing.assert_allclose(output, expected.numpy(), atol=1e-4)
    assert not torch.allclose(expected, torch.zeros_like(expected))  # the image pathway's default really ran


def test_3d_torchscript_export_matches_the_eager_network(tmp_path):
    configs = ["inference.yaml", *VOLUME_LA, "profiles/cpu_3d.yaml"]
    torch.manual_seed(2)
    torch.save(network(configs).state_dict(), tmp_path / "model.pt")
    monai_bundle("ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts"), "--ckpt_file",
                 str(tmp_path / "model.pt"), "--meta_file", "configs/metadata.json", "--config_file",
                 str([os.path.join("configs", c) for c in configs]), "--use_trace", "true", "--input_shape",
                 "[1,1,32,32,16]", *LA_META)
    eager = network(configs)
    eager.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    volume = torch.rand(1, 1, 32, 32, 16)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(tmp_path / "model.ts"))(volume), eager(volume), atol=1e-5)


def test_packaging_rejects_weights_that_do_not_fit(tmp_path):
    torch.save({"body.conv_in.conv.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="wrong.pt does not fit network_def"):
        build(str(tmp_path / "bundle.zip"), model=str(tmp_path / "wrong.pt"))
    assert not (tmp_path / "bundle.zip").exists()


@pytest.fixture
def loopback(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def an_image(tmp_path):
    if os.path.isdir(ACDC_IMAGES):
        return os.path.join(ACDC_IMAGES, sorted(os.listdir(ACDC_IMAGES))[0])
    path = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 90), dtype=np.uint8)).save(path)
    return str(path)


# The commands a bundle user runs besides the configs (bundle/docs): prepare or download a dataset, package a
# trained model with its overlays, start MONAI Label; and the app that MONAI Label runs in its own environment
USER_COMMANDS = ("scripts.datasets.__main__", "scripts.package", "scripts.label_server")
APP_MODULES = ("scripts.label_app",)
IMPORT_WHAT_IS_NAMED = """
import importlib, json, re, sys
from monai.bundle import ConfigParser
sys.path.insert(0, sys.argv[1])
for path in sys.argv[3:]:
    for name in re.findall(r"\\bscripts(?:\\.[A-Za-z_]\\w*)+", json.dumps(ConfigParser.load_config_file(path))):
        parts = name.split(".")
        while parts:
            try:
                importlib.import_module(".".join(parts))
                break
            except ImportError:
                parts.pop()
for module in json.loads(sys.argv[2]):
    importlib.import_module(module)
print(json.dumps(sorted(m for m in sys.modules if m == "scripts" or m.startswith("scripts."))))
"""


def test_zip_ships_the_modules_that_its_configs_and_user_commands_import(tmp_path, weights):
    build(str(tmp_path / "diffseg.zip"), model=str(weights))
    with zipfile.ZipFile(tmp_path / "diffseg.zip") as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    shipped = {n[len("diffseg/"):-len(".py")].replace("/", ".").removesuffix(".__init__") for n in names
               if n.startswith("diffseg/scripts/") and n.endswith(".py")}
    configs = [os.path.join(tmp_path, n) for n in names if n.startswith("diffseg/configs/") and n.endswith((".yaml", ".json"))]
    result = subprocess.run([sys.executable, "-c", IMPORT_WHAT_IS_NAMED, str(tmp_path / "diffseg"),
                             json.dumps(USER_COMMANDS), *configs], capture_output=True, text=True, cwd=tmp_path,
                            timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    # no module missing, none unreachable; the MONAI Label app imports monailabel, so it is not imported here
    assert set(json.loads(result.stdout.splitlines()[-1])) | set(APP_MODULES) == shipped
    docs = "".join(open(os.path.join(tmp_path, n)).read() for n in names if n.endswith(".md"))
    for module in USER_COMMANDS:  # each user command is documented in the shipped docs
        assert f"python -m {module.removesuffix('.__main__')}" in docs


@pytest.mark.slow
@pytest.mark.parametrize("ship", ["weights", "large_files"])
def test_zip_downloaded_over_loopback_runs_inference_from_another_folder(tmp_path, loopback, weights, ship):
    served, url = loopback
    if ship == "weights":
        build(str(served / "diffseg.zip"), model=str(weights))
    else:
        (served / "model.pt").write_bytes(weights.read_bytes())
        build(str(served / "diffseg.zip"), model=str(weights), model_url=f"{url}/model.pt")
    with zipfile.ZipFile(served / "diffseg.zip") as archive:
        names = set(archive.namelist())
    expected = {"diffseg/configs/metadata.json", "diffseg/configs/inference.yaml", "diffseg/configs/train.yaml",
                "diffseg/scripts/networks.py", "diffseg/docs/README.md", "diffseg/LICENSE"}
    assert expected <= names and not any("__pycache__" in n for n in names)
    assert ("diffseg/models/model.pt" in names) == (ship == "weights")
    assert ("diffseg/large_files.yml" in names) == (ship == "large_files")

    elsewhere = tmp_path / "elsewhere"
    monai_bundle("download", "--name", "diffseg", "--bundle_dir", str(elsewhere), "--url", f"{url}/diffseg.zip",
                 cwd=tmp_path)
    bundle = elsewhere / "diffseg"
    if ship == "large_files":
        monai_bundle("download_large_files", "--bundle_path", str(bundle), cwd=tmp_path)
    assert file_hash(str(bundle / "models" / "model.pt")) == file_hash(str(weights))

    image = an_image(tmp_path)
    monai_bundle("run", "--config_file", str(bundle / "configs" / "inference.yaml"), "--input_path", image,
                 "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    monai_bundle("run", "--config_file", os.path.join(BUNDLE, "configs", "inference.yaml"), "--input_path", image,
                 "--output_dir", str(tmp_path / "reference"), "--handlers#0#load_path", str(weights), cwd=tmp_path)
    stem = os.path.basename(image).rsplit(".", 1)[0]
    mask = np.asarray(Image.open(tmp_path / "out" / f"{stem}_seg.png"))
    assert mask.shape == np.asarray(Image.open(image)).shape[:2] and set(np.unique(mask)) <= {0, 1, 2}
    assert np.array_equal(mask, np.asarray(Image.open(tmp_path / "reference" / f"{stem}_seg.png")))


def test_overlays_are_baked_into_the_shipped_configs_and_metadata(tmp_path):
    overlays = [os.path.join(BUNDLE, "configs", "datasets", "acdc.yaml"),
                os.path.join(BUNDLE, "configs", "profiles", "cpu_2d.yaml")]
    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE, "configs", "inference.yaml"), *overlays])
    torch.save(parser.get_parsed_content("network_def").state_dict(), tmp_path / "model.pt")
    build(str(tmp_path / "acdc.zip"), model=str(tmp_path / "model.pt"), overlays=overlays)
    with zipfile.ZipFile(tmp_path / "acdc.zip") as archive:
        archive.extractall(tmp_path / "unpacked")
    configs = tmp_path / "unpacked" / "diffseg" / "configs"
    metadata = json.loads((configs / "metadata.json").read_text())
    pred = metadata["network_data_format"]["outputs"]["pred"]
    assert pred["num_channels"] == 4 and pred["channel_def"] == {
        "0": "background", "1": "right_ventricle", "2": "myocardium", "3": "left_ventricle"}
    assert metadata["network_data_format"]["inputs"]["image"]["spatial_shape"] == [64, 64]
    shipped = ConfigParser()
    shipped.read_config(str(configs / "inference.yaml"))   # alone, as MONAI Label reads it
    shipped["input_path"] = an_image(tmp_path)
    batch = next(iter(shipped.get_parsed_content("input_dataloader")))
    assert batch["image"].shape == (1, 1, 64, 64) and shipped.get_parsed_content("num_classes") == 4
    trained = ConfigParser()
    trained.read_config(str(configs / "train.yaml"))
    assert trained.get_parsed_content("dataset_layout") == "acdc" and trained.get_parsed_content("max_epochs") == 56


@pytest.mark.slow
def test_unpacked_bundle_trains_in_its_own_folder_and_serves_what_it_trained(tmp_path, weights):
    """Retraining a downloaded bundle writes into that bundle's models/ and eval/, and its inference uses the new
    weights."""
    build(str(tmp_path / "diffseg.zip"), model=str(weights))
    with zipfile.ZipFile(tmp_path / "diffseg.zip") as archive:
        archive.extractall(tmp_path)
    bundle = tmp_path / "diffseg"
    monai_bundle("run", "training", "--config_file", "configs/train.yaml", *TINY, cwd=bundle)
    model = bundle / "models" / "model.pt"
    assert file_hash(str(model)) != file_hash(str(weights))
    assert (bundle / "models" / "test_metrics.json").is_file() and (bundle / "eval" / "synthetic_data").is_dir()
    images = bundle / "eval" / "synthetic_data" / "images"
    monai_bundle("run", "--config_file", "configs/inference.yaml", "--input_path", str(images), cwd=bundle)
    assert (bundle / "models" / "model_settings.json").is_file()   # served at its training size, 32 x 32
    masks = list((bundle / "eval" / "inference").glob("*_seg.png"))
    assert masks and len(masks) == len(os.listdir(images))
