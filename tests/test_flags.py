import pytest

from scripts.flags import as_bool


@pytest.mark.parametrize("value", [True, "true", "True", "TRUE", "yes", "1", 1])
def test_true_spellings(value):
    assert as_bool(value) is True


@pytest.mark.parametrize("value", [False, "false", "False", "no", "0", 0, None, "null"])
def test_false_spellings(value):
    assert as_bool(value) is False


@pytest.mark.parametrize("value", ["ture", "2", 2, [True]])
def test_anything_else_is_an_error(value):
    with pytest.raises(ValueError, match="expected a boolean"):
        as_bool(value)
