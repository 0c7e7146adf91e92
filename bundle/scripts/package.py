"""Builds the bundle zip that MONAI's model zoo ships: ``<name>/`` with ``configs/``, ``scripts/``, ``docs/``,
``LICENSE``, ``models/model_settings.json`` (the settings the model was trained with, from its folder) and either
``models/model.pt`` (and ``model.ts`` if given) or ``large_files.yml``, which names the URL and hash of weights
hosted elsewhere (``python -m monai.bundle download_large_files`` fetches them).

    python -m scripts.package --output dist/diffseg.zip --model models/model.pt          # from the bundle folder
    python -m scripts.package --output dist/diffseg_acdc.zip --model models/model.pt \\
        --overlay configs/datasets/acdc.yaml configs/profiles/cpu_2d.yaml
    python -m scripts.package --output dist/diffseg.zip --model models/model.pt --model_url https://.../model.pt

``--overlay`` bakes the overlays a model was trained with into the shipped ``train.yaml`` and ``inference.yaml``
and into ``metadata.json`` (classes, channels, input shape), so that MONAI Label, which reads those files
alone, serves and trains the model as it was trained. The weights are checked against ``network_def``
(every key, every shape), so that a served model can never silently keep random weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zipfile

import torch
import yaml
from monai.bundle import ConfigParser

from .atomic import atomic_write
from .cli import BUNDLE_ROOT
from .model_settings import SETTINGS_FILE, settings_path

SHIPPED = {  # folder: extensions of the files that ship
    "configs": (".yaml", ".json", ".conf"),
    "scripts": (".py",),
    "docs": (".md", ".txt", ".json", ".png", ".csv"),
}
WORKFLOWS = ("train.yaml", "inference.yaml")   # the configs that overlays are baked into


def file_hash(path: str, hash_type: str = "sha256") -> str:
    digest = hashlib.new(hash_type)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_configs(files: list[str]) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(files)
    return parser


def check_weights(model: str, parser: ConfigParser) -> None:
    """Load ``model`` strictly into ``network_def``; a mismatch raises naming the file."""
    network = parser.get_parsed_content("network_def", lazy=False)
    state = torch.load(model, map_location="cpu", weights_only=True)
    try:
        network.load_state_dict(state.get("model", state), strict=True)
    except RuntimeError as error:
        raise ValueError(f"{model} does not fit network_def of the bundle's inference.yaml: {error}") from None


def metadata_for(metadata: dict, parser: ConfigParser) -> dict:
    """``metadata.json`` with the classes, channels and input shape of the (overlaid) inference config."""
    num_classes, channels = parser.get_parsed_content("num_classes"), parser.get_parsed_content("image_channels")
    names = parser.get_parsed_content("class_names") if "class_names" in parser else None
    names = list(names or [f"class {c}" for c in range(1, num_classes)])
    patched = parser.get_parsed_content("network_def#spatial_dims") == 3
    shape = list(parser.get_parsed_content("patch_size" if patched else "spatial_size"))
    data_format = json.loads(json.dumps(metadata["network_data_format"]))
    image, pred = data_format["inputs"]["image"], data_format["outputs"]["pred"]
    image.update(num_channels=channels, spatial_shape=shape, is_patch_data=patched,
                 channel_def={str(c): "image" if channels == 1 else f"channel {c}" for c in range(channels)})
    pred.update(num_channels=num_classes, spatial_shape=shape, is_patch_data=patched,
                channel_def={"0": "background", **{str(c + 1): name for c, name in enumerate(names)}})
    return {**metadata, "network_data_format": data_format}


def walk(bundle_root: str, folder: str) -> list[tuple[str, str]]:
    """``(path on disk, path in the bundle)`` of the files of ``folder`` that ship by extension."""
    files = []
    for parent, dirs, names in os.walk(os.path.join(bundle_root, folder)):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(names):
            path = os.path.join(parent, name)
            arcname = os.path.relpath(path, bundle_root)
            if name.endswith(SHIPPED[folder]) and not name.startswith("."):
                files.append((path, arcname))
    return files


def bundle_files(bundle_root: str = BUNDLE_ROOT) -> list[tuple[str, str]]:
    """``(path on disk, path in the bundle)`` of the shipped configs, scripts, docs and LICENSE."""
    files = [entry for folder in SHIPPED for entry in walk(bundle_root, folder)]
    files.append((os.path.join(bundle_root, "LICENSE"), "LICENSE"))
    return files


def build(output: str, name: str = "diffseg", model: str | None = None, model_url: str | None = None,
          torchscript: str | None = None, overlays: list[str] | None = None, bundle_root: str = BUNDLE_ROOT) -> str:
    """Write the bundle zip to ``output`` (atomically) and return its sha256."""
    if model is None or not os.path.isfile(model):
        raise FileNotFoundError(f"model weights not found: {model} (give --model, a trained models/model.pt)")
    for overlay in overlays or []:
        if not os.path.isfile(overlay):
            raise FileNotFoundError(f"overlay not found: {overlay}")
    configs = os.path.join(bundle_root, "configs")
    texts: dict[str, str] = {}   # files written from memory, replacing those on disk
    parsers = {w: read_configs([os.path.join(configs, w), *(overlays or [])]) for w in WORKFLOWS}
    serving = read_configs([os.path.join(configs, "inference.yaml"), *(overlays or [])])
    serving["model_path"] = model   # the model with the settings recorded beside it
    check_weights(model, serving)
    serving.get_parsed_content("served_settings_check")
    if overlays:
        for workflow, parser in parsers.items():
            texts[f"configs/{workflow}"] = yaml.safe_dump(parser.config, sort_keys=False)
    with open(os.path.join(configs, "metadata.json")) as f:
        texts["configs/metadata.json"] = json.dumps(metadata_for(json.load(f), serving), indent=4)
    entries = [(path, arcname) for path, arcname in bundle_files(bundle_root) if arcname not in texts]
    if os.path.isfile(settings_path(model)):
        entries.append((settings_path(model), f"models/{SETTINGS_FILE}"))
    if model_url is None:
        entries.append((model, "models/model.pt"))
        if torchscript is not None:
            entries.append((torchscript, "models/model.ts"))
    else:
        large_files = {"large_files": [{"path": "models/model.pt", "url": model_url,
                                         "hash_val": file_hash(model), "hash_type": "sha256"}]}
        texts["large_files.yml"] = yaml.safe_dump(large_files, sort_keys=False)

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path, arcname in entries:
                archive.write(path, f"{name}/{arcname}")
            for arcname, text in texts.items():
                archive.writestr(f"{name}/{arcname}", text)

    atomic_write(output, write)
    return file_hash(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.package", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="the zip to write, e.g. dist/diffseg.zip")
    parser.add_argument("--name", default="diffseg", help="the bundle's folder name inside the zip")
    parser.add_argument("--model", required=True, help="trained weights (a state dict, e.g. models/model.pt)")
    parser.add_argument("--model_url", help="ship large_files.yml with this URL instead of the weights")
    parser.add_argument("--torchscript", help="also ship this TorchScript export as models/model.ts")
    parser.add_argument("--overlay", nargs="+", default=[], help="overlays the model was trained with, in order")
    args = parser.parse_args(argv)
    try:
        digest = build(args.output, args.name, args.model, args.model_url, args.torchscript, args.overlay)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
