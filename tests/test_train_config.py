"""The training recipe's checks that the command line does not already cover (tests/test_train_cli.py)."""

import pytest

from anas_zoo.train.config import TrainConfig


def test_unknown_config_keys_are_named():
    with pytest.raises(ValueError, match="unknown config keys \\['lrr'\\]"):
        TrainConfig.from_dict({"lrr": 0.1})
