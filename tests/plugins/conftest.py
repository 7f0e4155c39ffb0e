"""Fixtures shared by the plugins tests."""
import pytest

from runner_fixtures import save_teacher


@pytest.fixture
def teacher_ckpt(tmp_path):
    """The path of a checkpoint of the runner templates' teacher."""
    return save_teacher(tmp_path)
