"""Serves the bundle in MONAI Label with its own app (``scripts.label_app``: MONAI Label's bundle infer and train
tasks, the train panel's settings applied, and uncertainty sampling) over a datastore folder (images, and
their labels in ``labels/final``). Runs offline: the bundle is unpacked into the app's ``model`` folder and
its ``scripts/label_app.py`` becomes the app's ``main.py``, so nothing is fetched. MONAI Label needs its own
environment (bundle/docs/monailabel.md)::

    python -m scripts.label_server --monailabel .venv-monailabel/bin/monailabel \\
        --bundle dist/diffseg.zip --studies /data/my_images --apps apps --port 8000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile

APP = "bundle_app"
FILE_EXTENSIONS = '["*.png", "*.jpg", "*.jpeg", "*.bmp", "*.tif", "*.tiff", "*.nii.gz", "*.nii"]'


def server_environment(monailabel: str) -> dict[str, str]:
    """The monailabel script runs ``python`` from PATH unless MONAILABEL_PYEXE names its environment's, and
    multi-GPU training runs ``torchrun`` from PATH: the environment's ``bin`` goes first. The datastore reads
    2D pictures and NIfTI volumes."""
    bin_dir = os.path.dirname(os.path.abspath(monailabel))
    return {
        **os.environ, "MONAILABEL_PYEXE": os.path.join(bin_dir, "python"),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]), "MONAI_LABEL_DATASTORE_FILE_EXT": FILE_EXTENSIONS,
    }


def prepare_app(apps: str, bundle_zip: str) -> tuple[str, str]:
    """Unpack the bundle zip into ``<apps>/bundle_app/model`` (replacing an older copy) and install its
    ``scripts/label_app.py`` as the app's ``main.py``; returns (app folder, bundle name)."""
    app_dir = os.path.join(apps, APP)
    with zipfile.ZipFile(bundle_zip) as archive:
        name = archive.namelist()[0].split("/")[0]
        target = os.path.join(app_dir, "model", name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        archive.extractall(os.path.join(app_dir, "model"))
    shutil.copyfile(os.path.join(target, "scripts", "label_app.py"), os.path.join(app_dir, "main.py"))
    return app_dir, name


def server_command(
    monailabel: str, app_dir: str, studies: str, name: str, host: str, port: int, uncertainty_draws: int = 8
) -> list[str]:
    return [monailabel, "start_server", "--app", app_dir, "--studies", studies, "--conf", "models", name,
            "--conf", "zoo_source", "github", "--conf", "uncertainty_draws", str(uncertainty_draws),
            "--host", host, "--port", str(port)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.label_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--monailabel", required=True, help="the monailabel command of its environment")
    parser.add_argument("--bundle", required=True, help="the bundle zip (python -m scripts.package)")
    parser.add_argument("--studies", required=True, help="the datastore folder: images, labels in labels/final")
    parser.add_argument("--apps", default="apps", help="where the app is copied to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--uncertainty_draws", type=int, default=8, help="noise draws per image for uncertainty sampling")
    args = parser.parse_args(argv)
    app_dir, name = prepare_app(args.apps, args.bundle)
    command = server_command(
        args.monailabel, app_dir, args.studies, name, args.host, args.port, args.uncertainty_draws
    )
    print(" ".join(command), flush=True)
    return subprocess.call(command, env=server_environment(args.monailabel))


if __name__ == "__main__":
    sys.exit(main())
