"""The render arguments' bounds, shared by render, eval, serve and the Python API."""

import math

import pytest

from s3d_fast.render.errors import RenderError
from s3d_fast.render.limits import MAX_BATCH, check_adapt_steps, check_batch, check_size


@pytest.mark.parametrize("batch", [1, 8, MAX_BATCH, 4.0])
def test_a_batch_in_range_is_taken_as_an_int(batch):
    assert check_batch(batch) == int(batch) and isinstance(check_batch(batch), int)


@pytest.mark.parametrize("batch", [0, -1, MAX_BATCH + 1, 2.5, math.nan, math.inf, "8", None])
def test_a_batch_out_of_range_or_not_whole_is_refused_by_name(batch):
    with pytest.raises(RenderError, match=r"^--batch must be an integer from 1 to 64, got "):
        check_batch(batch, "--batch")


@pytest.mark.parametrize("steps", [0, 100, 3.0])
def test_adaptation_steps_of_zero_or_more_are_taken(steps):
    assert check_adapt_steps(steps) == int(steps)


@pytest.mark.parametrize("steps", [-1, 0.5, math.nan, math.inf, "5"])
def test_negative_or_broken_adaptation_steps_are_refused_by_name(steps):
    with pytest.raises(RenderError, match=r"^--adapt-steps must be 0 or more, got "):
        check_adapt_steps(steps, "--adapt-steps")


@pytest.mark.parametrize("size", [63, 66.5, 1026, 0])
def test_an_output_size_off_the_even_range_is_refused(size):
    with pytest.raises(RenderError, match="--size must be an even number of pixels"):
        check_size(size)


def test_no_size_means_the_models_own():
    assert check_size(None) is None and check_size(256) == 256
