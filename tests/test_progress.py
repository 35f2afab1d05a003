"""Progress counts iterations against the iterations the run will make, in a terminal and off one."""

import io

import torch

from infogan_pl.data import BasicPropDataModule
from infogan_pl.losses import WassersteinGP
from infogan_pl.models import InfoGAN
from infogan_pl.progress import IterationProgress
from tests.helpers import SPEC, fit


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _run(stream, tmp_path, **model_kwargs):
    torch.manual_seed(0)
    progress = IterationProgress(every_n_iterations=4, refresh_seconds=0.0, stream=stream)
    data = BasicPropDataModule("line", train_size=96, val_size=32, batch_size=16)
    fit(
        InfoGAN(SPEC, **model_kwargs), data, max_steps=24, root=tmp_path, callbacks=[progress], enable_progress_bar=True
    )
    return stream.getvalue()


def test_in_a_terminal_one_bar_is_redrawn_in_place_and_completes(tmp_path):
    out = _run(_Terminal(), tmp_path)
    assert "\n" not in out.rstrip("\n") and out.count("\r") >= 12  # redrawn in place, one line
    assert "[####################] iteration 12/12 (100%)" in out and "Epoch" not in out


def test_off_a_terminal_a_line_every_n_iterations_against_the_planned_total(tmp_path):
    lines = _run(io.StringIO(), tmp_path).splitlines()
    assert lines[0] == "training: 12 iterations"
    assert [line.split()[1] for line in lines[1:]] == ["4/12", "8/12", "12/12"]


def test_the_total_counts_critic_steps_as_iterations(tmp_path):
    # 5 critic steps per generator step: 24 optimizer steps are 20 iterations (4 x (5 + 1))
    lines = _run(io.StringIO(), tmp_path, loss=WassersteinGP(), d_steps_per_g=5).splitlines()
    assert lines[0] == "training: 20 iterations" and lines[-1].startswith("iteration 20/20")
