"""The evaluation during training, `python -m infogan_pl.evaluate` and `python -m infogan_pl.report`."""

import csv
import json
from functools import partial

import pytest
import torch

from infogan_pl import evaluate, report
from infogan_pl.data import BasicProp, BasicPropDataModule
from infogan_pl.latent import LatentSpec
from infogan_pl.metrics import evaluation
from infogan_pl.metrics.basicprop_decoder import BasicPropDecoder
from infogan_pl.metrics.evaluation import Budget, evaluate_model, untrained_baseline
from infogan_pl.metrics.generated import generated_metrics
from infogan_pl.models import InfoGAN
from infogan_pl.nets import Discriminator, Generator
from infogan_pl.train import train
from tests.helpers import compose_config, tiny_overrides

SMALL = ["budget.real=48", "budget.generated_per_value=4", "budget.fid=32", "budget.mi=64"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    """Two finished tiny runs: BasicProp line and MNIST InfoGAN."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("basicprop_line", "mnist_infogan"):
        train(compose_config(tiny_overrides(name, mnist_dir), root / name))
    return root


def _logged(run):
    with open(run / "csv" / "metrics.csv") as f:
        return {k for row in csv.DictReader(f) for k, v in row.items() if v}


def test_validation_logs_the_metrics_that_apply_to_basicprop(runs):
    logged = _logged(runs / "basicprop_line")
    assert {"metric/cat_acc", "metric/nmi", "metric/mig", "metric/valid_rate"} <= logged
    assert {"mi/eval_cat0", "mi/eval_cont0", "mi/eval_cont1", "mi/eval_total", "val/d_real"} <= logged
    assert "metric/fid_lenet" not in logged  # FID is an MNIST metric here: not logged as 0 elsewhere
    figures = runs / "basicprop_line" / "figures"
    assert (figures / "mi_heatmap.png").is_file() and (figures / "mi_curve.png").is_file()
    assert len(list((runs / "basicprop_line" / "traversals").glob("iter*_cat0_cont1.png"))) >= 2


def test_validation_logs_fid_but_no_mig_or_valid_rate_on_mnist(runs):
    logged = _logged(runs / "mnist_infogan")
    assert {"metric/cat_acc", "metric/fid_lenet", "metric/gen_purity", "mi/eval_cat0"} <= logged
    assert not {"metric/mig", "metric/valid_rate"} & logged


def test_fids_real_reference_is_the_seeded_draw_from_the_whole_test_set(runs, monkeypatch):
    calls, first_n = [], evaluation.take
    monkeypatch.setattr(
        evaluation, "take", lambda data, n, seed=None: calls.append((n, seed)) or first_n(data, n, seed)
    )
    ckpt = runs / "mnist_infogan" / "checkpoints" / "last.ckpt"
    assert evaluate.main([f"ckpt_path={ckpt}", *SMALL, "budget.seed=7"]) == 0
    assert (32, 7) in calls  # FID's 32 real images: drawn with the evaluation's seed, not the first 32


def test_evaluate_writes_metrics_json_and_figures_next_to_the_checkpoint(runs, capsys):
    ckpt = runs / "basicprop_line" / "checkpoints" / "last.ckpt"
    assert evaluate.main([f"ckpt_path={ckpt}", *SMALL]) == 0
    out = ckpt.parent / "eval_last"
    record = json.loads((out / "metrics.json").read_text())
    assert record["experiment"] == "basicprop_line" and record["iteration"] == 3 and record["bn"] == "recalibrate"
    assert record["budget"]["fid"] == 32 and record["budget"]["real"] == 48 and "seed" in record["budget"]
    metrics = record["metrics"]
    assert {"metric/mig", "metric/cat_acc_untrained", "metric/gen_distinct", "mi/eval_cont0_opt"} <= set(metrics)
    assert (out / "mi_heatmap.png").is_file() and list(out.glob("traversal_cat0_cont*.png"))
    printed = capsys.readouterr().out
    assert f"metric/cat_acc            {metrics['metric/cat_acc']:.4f}" in printed  # the table shows the file's value
    assert evaluate.main([f"ckpt_path={ckpt}", *SMALL, "bn=running"]) == 0  # beside it, not over it
    assert json.loads((ckpt.parent / "eval_last_running" / "metrics.json").read_text())["bn"] == "running"
    assert json.loads((out / "metrics.json").read_text())["bn"] == "recalibrate"


def _model_with_wrong_running_statistics():
    torch.manual_seed(0)
    model = InfoGAN(LatentSpec(z_dim=4, categorical=[10], continuous=1), generator=partial(Generator, hidden=32),
                    discriminator=partial(Discriminator, hidden=64))  # fmt: skip
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.fill_(50.0)  # statistics of no image this model will see
    return model


def test_recalibrated_batch_norm_measures_q_on_real_statistics_and_restores_the_trained_ones():
    dm = BasicPropDataModule("line", train_size=512, val_size=256, batch_size=64, noise="foreground")
    model = _model_with_wrong_running_statistics()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    budget = Budget(real=256, generated_per_value=2, mi=64, bn_images=512)
    running = evaluate_model(model, dm, budget, bn="running").metrics
    recalibrated = evaluate_model(model, dm, budget, bn="recalibrate").metrics
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # training's state untouched
    assert running["metric/nmi"] < 0.05  # every image lands in one cluster under the wrong statistics
    assert recalibrated["metric/nmi"] > running["metric/nmi"] + 0.2


def test_the_untrained_baseline_is_the_chance_level_of_a_random_encoder_on_this_data():
    dm = BasicPropDataModule("line", train_size=512, val_size=1000, batch_size=64)
    images, factors = dm.val_set[torch.arange(1000)]
    chance = untrained_baseline(_model_with_wrong_running_statistics(), images, factors, ["position"])
    assert 0.1 < chance < 0.9  # above 1/10: random conv features already separate bar positions somewhat
    assert chance == untrained_baseline(_model_with_wrong_running_statistics(), images, factors, ["position"])


def test_evaluate_reports_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    assert evaluate.main([f"ckpt_path={tmp_path / 'nope.ckpt'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint") and err.count("\n") == 1
    assert evaluate.main([]) == 2


def test_report_regenerates_the_study_table_from_run_dirs(runs, capsys):
    assert report.main([str(runs)]) == 0
    text = (runs / "report.md").read_text()
    runs_table = text.split("## Runs")[1]
    table = [line for line in runs_table.splitlines() if line.startswith("| ") and "experiment" not in line]
    assert len(table) == 2
    line = next(t for t in table if t.startswith("| basicprop_line"))
    assert "foreground noise" in line and "z62 + Cat(10) + 2×U(-1,1)" in line and "valid " in line
    assert "[grid](" in line
    assert "FID " in next(t for t in table if t.startswith("| mnist_infogan"))
    assert "cat acc untrained" in text and "| 0 |" in line  # the seed column


def test_report_on_a_directory_without_runs_fails_clearly(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "no finished runs" in capsys.readouterr().err
    assert report.main([str(tmp_path / "missing")]) == 2


class _LineGenerator:
    """Draws the BasicProp line class map[c_cat] for code value c_cat (-1: a blank, invalid image)."""

    device = torch.device("cpu")
    latent = LatentSpec(z_dim=4, categorical=[10], continuous=1)

    def __init__(self, classes):
        self.classes = torch.tensor(classes)

    def generate(self, g_input):
        cls = self.classes[g_input[:, 4:14].argmax(1)]
        images = BasicProp("line", size=10)[cls.clamp(min=0)][0]
        images[cls < 0] = -1.0
        return images


def _generated(classes):
    return generated_metrics(_LineGenerator(classes), BasicPropDecoder("line"), ["position"], per_value=20, seed=1234)


def test_generated_consistency_is_one_for_a_code_that_controls_position_and_counts_valid_images():
    m = _generated([(v + 3) % 10 for v in range(10)])
    assert m["metric/gen_purity"] == 1.0 and m["metric/gen_acc"] == 1.0 and m["metric/valid_rate"] == 1.0
    assert m["metric/gen_acc/cat0_position"] == 1.0 and m["metric/gen_distinct"] == 10


def test_invalid_generated_images_count_as_errors():
    m = _generated([3] + [-1] * 9)  # one value draws a bar, the nine others blanks
    assert m["metric/valid_rate"] == pytest.approx(0.1)
    assert m["metric/gen_acc"] == pytest.approx(0.1) and m["metric/gen_purity"] == pytest.approx(0.1)


def test_a_collapsed_generator_shows_one_distinct_label_and_low_accuracy():
    m = _generated([4] * 10)
    assert m["metric/gen_purity"] == 1.0  # purity alone would flatter it
    assert m["metric/gen_distinct"] == 1 and m["metric/gen_acc"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bnn=running"], "bnn is neither a key of the checkpoint's configuration nor of evaluate (did you mean bn?)"),
        (["data.nois=both"], "did you mean data.noise?"),
        (["bn=batch"], "bn must be one of running, recalibrate"),
        (["budget.reel=5"], "budget.reel is not a budget"),
    ],
)
def test_evaluate_refuses_a_key_it_would_ignore_in_one_line(runs, capsys, args, message):
    ckpt = runs / "basicprop_line" / "checkpoints" / "last.ckpt"
    assert evaluate.main([f"ckpt_path={ckpt}", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
