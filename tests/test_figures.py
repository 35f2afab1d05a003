"""What a researcher looks at: labelled traversals, training curves, the figure over seeds, TensorBoard, the Python
API as the README shows it, and a command line that answers --help without loading torch."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infogan_pl.build import build
from infogan_pl.figures.curves import curves_plots
from infogan_pl.figures.traversals import traversal_images, traversal_plot
from infogan_pl.latent import SWEEP_DRAWS
from tests.helpers import CLI_ENV, TINY, compose_config, run_cli, tiny_overrides

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _texts(fig) -> str:
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return " | ".join([ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), *ticks])


@pytest.mark.parametrize("experiment", ["basicprop_line", "basicprop_rect", "mnist_infogan"])
def test_traversals_are_labelled_with_code_values_and_titled_with_run_and_iteration(experiment, tmp_path, mnist_dir):
    _, model = build(compose_config(tiny_overrides(experiment, mnist_dir), tmp_path))
    model.eval()
    images = traversal_images(model, steps=9, span=2.0)
    assert set(images) == {"cat0_cont0", "cat0_cont1"} and images["cat0_cont0"].shape[0] == 90
    fig = traversal_plot(images["cat0_cont0"], "cat0_cont0", 9, 2.0, f"{experiment}, seed 0, iteration 500")
    text = _texts(fig)
    assert f"{experiment}, seed 0, iteration 500" in text and "rows: cat0 value; columns: cont0" in text
    assert "cat0 value" in text and "cont0" in text
    assert "-2.0" in text and "+2.0" in text and "| 0 |" in text and "| 9" in text  # column and row values
    assert fig.get_size_inches()[0] * fig.dpi > 500  # large enough to read bars and digits


def test_a_preset_without_a_categorical_code_draws_its_continuous_code_swept_along_labelled_rows(tmp_path, mnist_dir):
    _, model = build(compose_config(tiny_overrides("basicprop_pp_diameter_ratio", mnist_dir), tmp_path))
    model.eval()
    images = traversal_images(model, steps=9, span=2.0)
    assert set(images) == {"cont0"} and images["cont0"].shape[0] == 9 * SWEEP_DRAWS
    text = _texts(traversal_plot(images["cont0"], "cont0", 9, 2.0, "basicprop_pp_diameter_ratio, seed 0"))
    assert "rows: draw; columns: cont0 (each row its own draw of z and the other codes)" in text
    assert "-2.0" in text and "+2.0" in text and "random latents" not in text


def test_a_traversal_without_a_continuous_code_says_what_each_column_draws():
    images = torch.rand(10 * 9, 1, 28, 28) * 2 - 1  # rows: the 10 values of cat0; columns: 9 draws
    text = _texts(traversal_plot(images, "cat0_samples", 9, 2.0, "basicprop_rect_two_cat, seed 0"))
    assert "rows: cat0 value; columns: draw (each column its own draw of z and the other codes)" in text


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One finished 3-iteration BasicProp line run, logged to CSV and TensorBoard."""
    root = tmp_path_factory.mktemp("figures")
    args = ["experiment=basicprop_line", "data.train_size=64", "data.val_size=48", *TINY, "logger=tensorboard"]
    done = run_cli([*args, f"hydra.run.dir={root / 'run'}"], root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


def test_a_finished_run_has_labelled_traversals_and_curves_redrawn_by_the_figures_command(run, tmp_path):
    assert sorted(p.name for p in (run / "traversals").glob("iter000003_*")) == [
        "iter000003_cat0_cont0.png",
        "iter000003_cat0_cont1.png",
    ]
    curves, mi = curves_plots(run)
    titles = [ax.get_title() for ax in curves.axes]
    assert any("Losses" in t for t in titles) and any("L_I per code" in t for t in titles)
    assert any("Discriminator on real and generated" in t for t in titles) and any("Evaluation" in t for t in titles)
    legends = " ".join(t.get_text() for ax in curves.axes if ax.get_legend() for t in ax.get_legend().get_texts())
    assert "loss/d" in legends and "cat0 (train)" in legends and "D(x), real" in legends and "valid_rate" in legends
    assert "basicprop_line, seed 0: iterations 0–3" in curves._suptitle.get_text()
    # drawn once at the closing evaluation, not again at the end: what a redraw from the finished run's files draws
    drawn = {name: (run / "figures" / name).read_bytes() for name in ("curves.png", "mi_curve.png")}
    (run / "figures" / "curves.png").unlink()
    redraw = run_cli([str(run)], tmp_path, module="infogan_pl.figures")
    assert redraw.returncode == 0
    assert drawn == {name: (run / "figures" / name).read_bytes() for name in drawn}
    assert run_cli([str(tmp_path)], tmp_path, module="infogan_pl.figures").returncode == 2


def test_tensorboard_logs_every_scalar_against_iteration_and_the_traversal_images(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss/d", "mi/cat0", "d/real", "metric/cat_acc", "metric/success"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss/d")] == [1, 2, 3]  # log_every_n_steps=1: iterations 1, 2, 3
    assert [e.step for e in events.Scalars("metric/cat_acc")] == [2, 3]  # evaluated at iterations 2 and 3
    assert "images/traversal/cat0_cont0" in tags["images"]
    assert (run / "csv" / "metrics.csv").is_file() and (run / "figures" / "curves.png").is_file()


def test_the_readme_python_example_runs_as_written(run, tmp_path):
    block = re.search(r"## From Python\n.*?```python\n(.*?)```", README, re.S)
    assert block, "the README's `## From Python` section has no python block"
    code = block.group(1).replace("outputs/basicprop_line/<time>", str(run))
    assert code.count("\n") <= 6
    code += "\nprint(images.shape, codes.cat.shape, type(figure).__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=CLI_ENV, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch.Size([8, 1, 28, 28]) torch.Size([8, 1]) Figure" in done.stdout


def test_load_run_generates_with_chosen_codes_and_reads_them_back(run):
    from infogan_pl import load_run

    trained = load_run(run / "checkpoints" / "last.ckpt", bn_images=64)
    a, b = trained.generate(n=4, cat=2, seed=1), trained.generate(n=4, cat=2, seed=1)
    assert torch.equal(a, b) and a.shape == (4, 1, 28, 28) and a.abs().max() <= 1
    per_image = trained.generate(n=3, cat=torch.tensor([0, 1, 2]), cont=torch.zeros(3, 2), z=torch.zeros(3, 62))
    assert not torch.equal(per_image[0], per_image[1])  # only the categorical value differs
    encoded = trained.encode(per_image)
    assert encoded.cat.shape == (3, 1) and encoded.cont.shape == (3, 2) and encoded.cat_probs[0].shape == (3, 10)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.generate(cat=10), "cat: code 0 is Cat(10), its values are 0..9; got [10]."),
        (lambda r: r.generate(cat=[1, 2]), "cat: 2 values for this run's 1 categorical code(s); give at most 1."),
        (lambda r: r.generate(cont=[0.5, 0.0, 1.0]), "cont: 3 values for this run's 2 continuous code(s)"),
        (lambda r: r.traverse(cat=1), "cat=1: this run has 1 categorical code(s); give an index below 1."),
        (lambda r: r.traverse(cont=2), "cont=2: this run has 2 continuous code(s); give an index below 2."),
    ],
)
def test_load_run_names_the_argument_that_does_not_fit_the_runs_codes(run, call, message):
    from infogan_pl import load_run

    with pytest.raises(ValueError, match=re.escape(message)):
        call(load_run(run / "checkpoints" / "last.ckpt", bn_images=0))


def _imports_after(args: list[str], module: str = "infogan_pl") -> tuple[int, set[str]]:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['x', *{args!r}]\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__')\n"
        "    code = 0\n"
        "except SystemExit as e:\n"
        "    code = e.code or 0\n"
        "print('LOADED', code, *sorted(m for m in ('torch', 'lightning', 'wandb', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CLI_ENV, timeout=120)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("LOADED"))
    _, code, *loaded = line.split()
    return int(code), set(loaded)


@pytest.mark.parametrize(
    ("args", "module", "code"),
    [
        (["--help"], "infogan_pl", 0),
        (["model.lamda_info=1"], "infogan_pl", 2),
        (["experiment=basicprop_lin"], "infogan_pl", 2),
        (["--help"], "infogan_pl.evaluate", 0),
        (["--help"], "infogan_pl.report", 0),
    ],
)
def test_help_and_a_refused_key_answer_without_loading_torch_or_lightning(args, module, code):
    status, loaded = _imports_after(args, module)
    assert status == code and not loaded, loaded


def test_evaluate_help_says_what_it_does_and_its_keys():
    done = run_cli(["--help"], ROOT, module="infogan_pl.evaluate")
    assert done.returncode == 0 and "usage: python -m infogan_pl.evaluate ckpt_path=" in done.stdout
    assert "bn=recalibrate|running" in done.stdout and "error" not in done.stdout + done.stderr
