"""Kernel selection by CPU level."""

import os
import subprocess
import sys

import pytest

import cbackprop
from cbackprop import _dispatch


def test_loaded_level_is_supported_and_named():
    assert cbackprop.kernel_level in _dispatch.supported_levels()
    assert "baseline" in _dispatch.supported_levels()


def run_with_level(level):
    env = dict(os.environ, CBACKPROP_KERNELS=level)
    # import the cbackprop this test session imported: from its parent directory, so a
    # source tree without compiled modules in the working directory cannot shadow it
    where = os.path.dirname(os.path.dirname(cbackprop.__file__))
    env["PYTHONPATH"] = where + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", "import cbackprop; print(cbackprop.kernel_level)"],
                          capture_output=True, text=True, env=env, cwd=os.path.expanduser("~"))


@pytest.mark.parametrize("level", _dispatch.supported_levels())
def test_every_supported_level_can_be_forced(level):
    result = run_with_level(level)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == level


def test_unknown_level_is_refused_with_a_clear_message():
    result = run_with_level("sse9")
    assert result.returncode != 0
    assert "CBACKPROP_KERNELS='sse9'" in result.stderr
