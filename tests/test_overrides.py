import os

import pytest

from scripts.overrides import check_overrides, command_line_overrides

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "bundle", "configs")
TRAIN, INFERENCE = os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "inference.yaml")


def test_command_line_overrides_are_read_in_both_spellings():
    files, ids = command_line_overrides(["run", "training", "--config_file", f"['{TRAIN}']", "--seed", "1",
                                         "--label_fraction=5"])
    assert files == [TRAIN] and ids == ["seed", "label_fraction"]


def test_a_misspelled_option_is_refused_with_the_nearest_id():
    with pytest.raises(ValueError, match="--label_fracton: no config id .* did you mean --label_fraction"):
        check_overrides(["run", "training", "--config_file", TRAIN, "--label_fracton", "50"])
    with pytest.raises(ValueError, match="--ckpt_dir: no config id"):
        check_overrides(["run", "--config_file", INFERENCE, "--ckpt_dir", "/tmp"])


def test_existing_ids_and_new_arguments_of_a_component_are_accepted():
    check_overrides(["run", "training", "--config_file", f"['{TRAIN}']", "--label_fraction", "5",
                     "--network_def#channels", "[8,16]", "--train#trainer#amp", "true"])
