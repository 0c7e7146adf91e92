"""Downloads where the publisher allows them, verified against the publisher's checksum and resumable;
elsewhere, instructions for a manual download. No other part of the bundle touches the network."""

from __future__ import annotations

import json
import os
import urllib.request
from urllib.error import URLError

from monai.apps import DecathlonDataset
from monai.apps.utils import check_hash, extractall

from .splits import DatasetError

ZENODO_RECORD = "https://zenodo.org/api/records/4488164"
HMEPS_ARCHIVE = "NN_human_mouse_eyes.zip"

MANUAL = {
    "glas": "GlaS: download 'Warwick QU Dataset (Released 2016_07_08)' (e.g. from the GlaS challenge page or its "
    "Kaggle mirror, which needs a login) and unpack it into ROOT.",
    "ph2": "PH2: request the archive from https://www.fc.up.pt/addi/ph2%20database.html (RAR), unpack it into ROOT "
    "so that ROOT/PH2Dataset/PH2 Dataset images/IMD002/... exists.",
    "acdc": "ACDC: register at https://www.creatis.insa-lyon.fr/Challenge/acdc/, slice the volumes into "
    "ROOT/images and ROOT/masks (patientNNN_frameNN_slice_ZZ.png) with train.list and val.list.",
    "la": "LA (preprocessed): copy 'data/2018LA_Seg_Training Set' with train.list and test.list from the UA-MT "
    "repository (github.com/yulequan/UA-MT) into ROOT.",
    "la_challenge": "LA (challenge): register at the 2018 Atrial Segmentation Challenge "
    "(atriaseg2018.cardiacatlas.org) and unpack 'Training Set' into ROOT.",
    "hmeps": f"HMEPS: download {HMEPS_ARCHIVE} from https://doi.org/10.5281/zenodo.4488164 and unpack it into ROOT.",
    "heart": "Task02_Heart: download Task02_Heart.tar from http://medicaldecathlon.com and unpack it into ROOT.",
    "decathlon": "Decathlon: download the task's archive (TaskNN_Name.tar) from http://medicaldecathlon.com and "
    "unpack it into ROOT.",
    "nnunet": "nnU-Net v2: point ROOT at a raw dataset folder (nnUNet_raw/DatasetNNN_Name with dataset.json).",
    "ssl4mis_acdc": "ACDC (SSL4MIS): copy data/ACDC (data/, train_slices.list, val.list, test.list) from the SSL4MIS "
    "repository's download links (github.com/HiLab-git/SSL4MIS) into ROOT.",
}


def _fetch(url: str, path: str, expected_size: int | None = None) -> None:
    """Download ``url`` to ``path``, continuing a ``path.part`` left by an interrupted run (HTTP Range)."""
    partial = path + ".part"
    done = os.path.getsize(partial) if os.path.isfile(partial) else 0
    if expected_size is not None and done >= expected_size:
        os.replace(partial, path)
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        resumed = response.status == 206
        with open(partial, "ab" if resumed else "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
    os.replace(partial, path)


def fetch_verified(url: str, path: str, md5: str, expected_size: int | None = None) -> str:
    """``path`` holding ``url``'s content with the given md5: reused when already there, else downloaded
    (resuming a partial file); a mismatch removes the file and raises."""
    if not (os.path.isfile(path) and check_hash(path, md5, "md5")):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _fetch(url, path, expected_size)
        if not check_hash(path, md5, "md5"):
            os.remove(path)
            raise DatasetError(f"{path} downloaded from {url} does not match its md5 {md5}; it was removed, run again.")
    return path


def _zenodo_file(record_url: str, name: str) -> tuple[str, str, int]:
    """URL, md5 and size of one file of a Zenodo record, from the record's metadata."""
    with urllib.request.urlopen(record_url, timeout=60) as response:
        record = json.load(response)
    for entry in record.get("files", []):
        if entry.get("key") == name:
            algorithm, _, value = entry["checksum"].partition(":")
            if algorithm != "md5":
                raise DatasetError(f"{record_url}: unexpected checksum type '{algorithm}' for {name}")
            return entry["links"]["self"], value, int(entry["size"])
    raise DatasetError(f"{record_url} has no file {name}")


def download(dataset: str, root: str) -> str:
    """Download and unpack ``dataset`` into ``root``; returns the folder to prepare from."""
    root = os.path.abspath(root)
    try:
        if dataset == "heart":
            if not os.path.isfile(os.path.join(root, "Task02_Heart", "dataset.json")):
                archive = fetch_verified(
                    DecathlonDataset.resource["Task02_Heart"], os.path.join(root, "Task02_Heart.tar"),
                    DecathlonDataset.md5["Task02_Heart"],
                )
                extractall(archive, root)
            return os.path.join(root, "Task02_Heart")
        if dataset == "hmeps":
            if not os.path.isdir(os.path.join(root, "NN_human_mouse_eyes", "fullFrames")):
                url, md5, size = _zenodo_file(ZENODO_RECORD, HMEPS_ARCHIVE)
                archive = fetch_verified(url, os.path.join(root, HMEPS_ARCHIVE), md5, size)
                extractall(archive, root)
            return os.path.join(root, "NN_human_mouse_eyes")
    except (URLError, OSError) as error:
        raise DatasetError(
            f"cannot download {dataset} ({error}). Offline or blocked: {MANUAL[dataset].replace('ROOT', root)}"
        ) from error
    if dataset not in MANUAL:
        raise DatasetError(f"unknown dataset '{dataset}'; known: {', '.join(MANUAL)}")
    raise DatasetError(
        f"{dataset} cannot be downloaded automatically (the publisher requires registration or gives no stable "
        f"URL with a checksum). {MANUAL[dataset].replace('ROOT', root)}"
    )
