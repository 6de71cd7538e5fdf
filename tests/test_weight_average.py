"""``train.average_last``: a phase ends on the mean of its last steps' trained weights, and a
run interrupted inside that window resumes to the same mean."""

import pytest
import torch
from model_helpers import FAST_TRAIN, training_interrupted_at

from s3d_fast.checkpoint import CheckpointFormatError, RunDirectory, load_checkpoint
from s3d_fast.cli import main
from s3d_fast.training.weight_average import WeightAverage

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_mean_covers_the_window_and_the_trained_weights_only():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[1].requires_grad_(False)
    frozen = model[1].weight.detach().clone()
    average = WeightAverage.for_span(model, (10, 20), 3)
    assert (average.first, average.last) == (18, 20)
    for step in range(11, 21):
        with torch.no_grad():
            model[0].weight.fill_(float(step))
        average.update(step)
    average.apply()
    assert average.count == 3
    assert torch.allclose(model[0].weight, torch.full((2, 2), 19.0))  # mean of steps 18, 19, 20
    assert torch.equal(model[1].weight, frozen)
    # A window longer than the phase covers the whole phase; 0 averages nothing.
    assert WeightAverage.for_span(model, (10, 20), 50).first == 11
    assert WeightAverage.for_span(model, (10, 20), 0) is None


def test_an_average_of_other_steps_is_refused():
    model = torch.nn.Linear(2, 2)
    saved = WeightAverage.for_span(model, (0, 20), 5)
    saved.update(17)
    other = WeightAverage.for_span(model, (0, 20), 4)
    with pytest.raises(CheckpointFormatError, match="steps 16-20, this run steps 17-20"):
        other.load_state_dict(saved.state_dict())


def _train(data, out, *extra, steps=6):
    argv = ["train", "--data", str(data), "--out", str(out), "--steps", str(steps), "--quiet"]
    for o in FAST_TRAIN + ["train.checkpoint_every=1", *extra]:
        argv += ["--set", o]
    return main(argv)


def _weights(out, step):
    return load_checkpoint(RunDirectory(out).checkpoint_path(step)).model_state


def test_a_run_ends_on_the_mean_of_its_last_steps_and_resumes_inside_the_window(data, tmp_path):
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    assert _train(data, plain) == 0
    assert _train(data, averaged, "train.average_last=3") == 0
    # Averaging changes no step: the run trains as the plain one and ends on the mean of
    # the plain run's weights after steps 4, 5 and 6 (the three checkpoints kept).
    assert all(torch.equal(_weights(plain, 5)[k], v) for k, v in _weights(averaged, 5).items())
    last = [_weights(plain, s) for s in (4, 5, 6)]
    final = _weights(averaged, 6)
    for name, value in final.items():
        assert torch.allclose(value, sum(w[name] for w in last) / 3, atol=1e-6), name
    moved = [k for k in final if not torch.equal(final[k], last[-1][k])]
    assert moved  # the mean is not the last step's weights

    # Interrupted after step 5, inside the window: its checkpoint keeps the mean so far.
    halves = tmp_path / "halves"
    with training_interrupted_at(5):
        assert _train(data, halves, "train.average_last=3") == 130
    assert (
        load_checkpoint(RunDirectory(halves).checkpoint_path(5), with_training=True).optimizers["weight_average"][
            "count"
        ]
        == 2
    )
    assert main(["train", "--data", str(data), "--out", str(halves), "--resume", "--quiet"]) == 0
    assert all(torch.equal(final[k], v) for k, v in _weights(halves, 6).items())


def test_resuming_inside_the_window_with_another_setting_is_one_clear_error(data, tmp_path, capsys):
    run = tmp_path / "run"
    with training_interrupted_at(5):
        assert _train(data, run, "train.average_last=3") == 130
    capsys.readouterr()
    resume = ["train", "--data", str(data), "--out", str(run), "--resume", "--quiet"]
    assert main(resume + ["--set", "train.average_last=0"]) == 1
    assert "resume with the train.average_last it was saved with" in capsys.readouterr().err
    assert main(resume + ["--set", "train.average_last=4"]) == 1
    assert "steps 4-6, this run steps 3-6" in capsys.readouterr().err
