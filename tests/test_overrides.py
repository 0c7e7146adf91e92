import os

import pytest

from scripts.overrides import check_overrides, command_line_values

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "bundle", "configs")
TRAIN, INFERENCE = os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "inference.yaml")


def test_command_line_overrides_are_read_in_both_spellings():
    files, values = command_line_values(["run", "training", "--config_file", f"['{TRAIN}']", "--seed", "1",
                                         "--label_fraction=5%", "--spatial_size", "[64,64]", "--epoch_length", "null"])
    assert files == [TRAIN] and values == {"seed": 1, "label_fraction": "5%", "spatial_size": [64, 64],
                                           "epoch_length": None}


def test_a_misspelled_option_is_refused_with_the_nearest_id():
    with pytest.raises(ValueError, match="--label_fracton: no config id .* did you mean --label_fraction"):
        check_overrides(["run", "training", "--config_file", TRAIN, "--label_fracton", "50"])
    with pytest.raises(ValueError, match="--ckpt_dir: no config id"):
        check_overrides(["run", "--config_file", INFERENCE, "--ckpt_dir", "/tmp"])


def test_existing_ids_and_new_arguments_of_a_component_are_accepted():
    check_overrides(["run", "training", "--config_file", f"['{TRAIN}']", "--label_fraction", "5",
                     "--network_def#channels", "[8,16]", "--train#trainer#amp", "true"])


@pytest.mark.parametrize("option, value, expected", [
    ("max_epochs", "abc", "--max_epochs 'abc': expected an integer of at least 1."),
    ("learning_rate", "-1", "--learning_rate -1: expected a number above 0."),
    ("batch_size", "0", "--batch_size 0: expected an integer of at least 1."),
    ("label_fraction", "abc", "--label_fraction 'abc': expected a percentage in (0, 100], such as 5."),
    ("num_classes", "1", "--num_classes 1: expected an integer of at least 2."),
    ("spatial_size", "[0,0]", "--spatial_size [0, 0]: expected a list of positive sizes, such as [128,128]."),
])
def test_a_documented_option_of_the_wrong_type_or_range_is_refused_naming_it(option, value, expected):
    with pytest.raises(ValueError) as caught:
        check_overrides(["run", "training", "--config_file", TRAIN, f"--{option}", value])
    assert str(caught.value) == expected


def test_valid_values_and_config_expressions_pass_the_value_check():
    check_overrides(["run", "training", "--config_file", TRAIN, "--max_epochs", "3", "--learning_rate", "1e-3",
                     "--label_fraction", "5%", "--num_labeled", "null", "--max_epochs", "$1 + 1", "--spatial_size", "[32,32]"])
