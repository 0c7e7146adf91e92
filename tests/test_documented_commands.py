"""Every ``python -m monai.bundle run`` command that the READMEs and the configs' own comments document names
config files that exist and, after merging them, options that are config ids, and every documented
``python -m experiments`` command names a preset that exists: a renamed file, id or preset fails here before
a user meets it."""

import os
import re
import shlex

import pytest
from monai.bundle import ConfigParser

from experiments.grid import preset_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "bundle", "docs", "README.md"),
        os.path.join(ROOT, "bundle", "docs", "monailabel.md")]
BUNDLE_OPTIONS = {"config_file", "meta_file", "logging_file", "run_id", "init_id", "final_id", "args_file",
                  "filepath", "ckpt_file", "key_in_ckpt", "use_trace", "input_shape", "net_id", "name",
                  "bundle_dir", "url", "bundle_path", "source", "n", "any", "extra_forward_args", "tracking"}


def read_document(path):
    """The text of a README, or the comments of a config (where each config says how to run it), with
    continuation lines joined."""
    text = open(path).read()
    if path.endswith(".yaml"):
        text = "\n".join(line.lstrip("#") for line in text.splitlines() if line.startswith("#"))
        text = re.sub(r",\n\s*", ",", text)  # a list of config files wrapped over comment lines
    return text.replace("\\\n", " ")


def documented_commands():
    """``(document, command)`` for each documented ``python -m monai.bundle run`` command; commands without
    config files, or with placeholders in them (``<method>``), are left out."""
    configs = os.path.join(ROOT, "bundle", "configs")
    documents = DOCS + sorted(os.path.join(folder, name) for folder, _, names in os.walk(configs)
                              for name in names if name.endswith(".yaml"))
    commands = []
    for path in documents:
        for fragment in re.findall(r"`([^`\n]*python -m monai\.bundle run[^`\n]*)`|^\s+(.*python -m monai\.bundle run.*)$",
                                   read_document(path), flags=re.M):
            command = (fragment[0] or fragment[1]).split("  #")[0].strip()
            if "--config_file" in command and "<" not in command:
                commands.append((os.path.relpath(path, ROOT), command))
    return commands


def config_files(command):
    files = shlex.split(command)[shlex.split(command).index("--config_file") + 1]
    return re.findall(r"'([^']+)'", files) or [files]


@pytest.mark.parametrize("document, command", documented_commands())
def test_documented_command_names_existing_files_and_ids(document, command):
    files = config_files(command)
    base = ROOT if files[0].startswith("bundle/") else os.path.join(ROOT, "bundle")  # or from the bundle folder
    paths = [os.path.join(base, name) for name in files]
    missing = [name for name, path in zip(files, paths) if not os.path.isfile(path)]
    assert not missing, f"{document}: {command}\nnames missing config files {missing}"
    parser = ConfigParser()
    parser.read_config(paths)
    words = shlex.split(command)
    if "--tracking" in words:   # a settings file, whose configs add ids
        tracking = os.path.join(base, words[words.index("--tracking") + 1])
        assert os.path.isfile(tracking), f"{document}: {command}\nnames a missing tracking settings file"
        parser.update(ConfigParser.load_config_file(tracking)["configs"])
    options = re.findall(r"(?<![\w'])--([A-Za-z_][\w#]*)", command)
    unknown = [o for o in options if o not in BUNDLE_OPTIONS and not o.startswith("_meta_") and o not in parser]
    assert not unknown, f"{document}: {command}\nnames no config id: {unknown}"


def test_the_documents_hold_commands():
    documents = {document for document, _ in documented_commands()}
    assert len(documented_commands()) >= 20 and "bundle/configs/datasets/la.yaml" in documents


def test_documented_experiment_commands_name_existing_presets():
    presets = os.path.join(ROOT, "experiments", "presets")
    documents = DOCS + sorted(os.path.join(presets, name) for name in os.listdir(presets))
    named = {(os.path.relpath(path, ROOT), name) for path in documents
             for name in re.findall(r"python -m experiments (?:run|list|report|restore) ([A-Za-z_]\w*)", read_document(path))}
    unknown = [(document, name) for document, name in named if name not in preset_names()]
    assert len(named) >= 10 and not unknown, unknown
