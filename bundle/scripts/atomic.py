"""Atomic file writes: a temporary file in the target folder (same extension), then ``os.replace``."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import torch


def prepare_output_folder(path: str | os.PathLike) -> str:
    """Check before any work is done that this run can write to ``path``: an existing folder is tried with a
    write and cleared of the ``.tmp-*`` files that an interrupted atomic write left behind; a missing one is
    not created yet (nothing is written before the data are checked), but the folder that would hold it
    must be writable."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{path} is a file, not a folder: choose a folder for the run's outputs.")
    try:
        if not os.path.isdir(path):
            parent = os.path.dirname(os.path.abspath(path))
            while not os.path.exists(parent):
                parent = os.path.dirname(parent)
            if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied", parent)
            return path
        for name in os.listdir(path):
            if name.startswith(".tmp-"):
                os.remove(os.path.join(path, name))
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tmp-")
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise PermissionError(f"cannot write to {path} ({error.strerror}): choose another folder.") from error
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path``; ``path`` is never left half-written."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=f"-{os.path.basename(path)}")
    os.close(fd)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise OSError(f"no space left on the device of {folder}: {path} was not written (an earlier version "
                          "of it is kept); free space or choose another folder") from error
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_json_dump(obj: Any, path: str | os.PathLike) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    atomic_write(path, write)
