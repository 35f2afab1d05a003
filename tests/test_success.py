"""Whether a run learned its task (metric/success), and `report`'s table over seeds that counts it."""

import json

import pytest
from omegaconf import OmegaConf

from infogan_pl import report
from infogan_pl.metrics.success import heights_found, success

LINE_OK = {"metric/valid_rate": 1.0, "metric/gen_distinct": 10.0, "metric/cat_acc": 1.0}


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({}, 1.0),
        ({"metric/valid_rate": 0.9}, 0.0),
        ({"metric/gen_distinct": 9.0}, 0.0),
        ({"metric/cat_acc": 0.98}, 0.0),
    ],
)
def test_a_line_run_succeeds_only_with_valid_bars_at_ten_positions_that_q_reads(change, verdict):
    assert success({**LINE_OK, **change}, "line", 1) == verdict


def test_a_collapsed_generator_fails_even_where_q_reads_real_images():
    grid = {"metric/valid_rate": 0.0, "metric/gen_distinct": 0.0, "metric/cat_acc": 1.0}  # make train's seed 0
    assert success(grid, "line", 1) == 0.0


def test_rectangles_need_one_height_per_categorical_code_up_to_both():
    one = {"metric/valid_rate": 0.99, "metric/cat_acc/cat0_left_height": 0.95, "metric/cat_acc/cat0_right_height": 0.2}
    assert success(one, "rectangles", 1) == 1.0
    two = {**one, "metric/cat_acc/cat1_left_height": 0.97, "metric/cat_acc/cat1_right_height": 0.3}
    assert heights_found(two, 2) == 1  # both codes read the left height: one height found
    assert success(two, "rectangles", 2) == 0.0
    two["metric/cat_acc/cat1_right_height"] = 0.91
    assert heights_found(two, 2) == 2 and success(two, "rectangles", 2) == 1.0
    assert success({**two, "metric/valid_rate": 0.94}, "rectangles", 2) == 0.0


def test_basicprop_pp_mnist_and_vae_criteria():
    assert success({"metric/valid_rate": 0.91}, "translation", 0) == 1.0  # no categorical factor
    assert success({"metric/valid_rate": 0.95, "metric/cat_acc": 0.9}, "colour", 1) == 0.0
    assert success({"metric/cat_acc": 0.951}, "mnist", 1) == 1.0
    assert success({"metric/fid_lenet": 20.0}, "mnist", 0) is None  # a code-less GAN: no criterion
    assert success(LINE_OK, None, 1) is None  # CelebA
    assert success({"metric/active_dims": 3.0, "metric/recon": 1.0}, "line", 0) == 0.0
    assert success({"metric/active_dims": 6.0, "metric/recon": 1.0}, "line", 0) == 1.0


def _run(root, name, seed, metrics, overrides=(), nan=None, recipe=None):
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(OmegaConf.to_yaml({"seed": seed, "latent": {"z_dim": 62, "categorical": [10],
                                                        "continuous": 2}, "data": {}, "model": {}}))  # fmt: skip
    summary = {"experiment": "basicprop_line", "seed": seed, "iterations": 10, "metrics": metrics,
               "overrides": ["experiment=basicprop_line", *overrides, f"seed={seed}", "logger=csv"],
               "nan_iteration": nan, **({"recipe": recipe} if recipe else {})}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))


def test_report_groups_runs_that_differ_only_in_their_seed_with_successes_and_medians(tmp_path):
    for seed, mig in enumerate([0.9, 0.95, 0.1]):
        _run(tmp_path, f"sweep/{seed}", seed, {**LINE_OK, "metric/mig": mig, "metric/success": float(mig > 0.5)})
    _run(tmp_path, "sweep/3", 0, {**LINE_OK, "metric/mig": 0.5, "metric/success": 0.0}, ["recipe=study"])
    _run(tmp_path, "sweep/4", 1, {"metric/success": None}, ["recipe=study"], nan=12)
    text = report.report([tmp_path], tmp_path / "report.md")
    seeds = text.split("## Over seeds")[1].split("## Runs")[0]
    rows = [line for line in seeds.splitlines() if line.startswith("| basicprop_line")]
    assert len(rows) == 2
    default = next(r for r in rows if "recipe=study" not in r)
    assert "| 3 | 0,1,2 | ? | 2/3 | 0 |" in default and "0.900 (0.100–0.950)" in default
    study = next(r for r in rows if "recipe=study" in r)
    assert "| 2 | 0,1 | ? | 0/2 | 1 |" in study  # a NaN stop counts as a failure


def test_report_keeps_runs_of_different_recipes_apart_and_names_each_recipe(tmp_path):
    # the same command line at two commits where the preset selected different recipes: two trainings, two rows
    _run(tmp_path, "before/0", 0, {**LINE_OK, "metric/success": 0.0}, recipe="layer_norm")
    _run(tmp_path, "after/0", 0, {**LINE_OK, "metric/success": 1.0}, recipe="layer_norm_g_average")
    _run(tmp_path, "after/1", 1, {**LINE_OK, "metric/success": 1.0}, recipe="layer_norm_g_average")
    _run(tmp_path, "study/0", 0, {**LINE_OK, "metric/success": 0.0}, ["recipe=study"], recipe="study")
    text = report.report([tmp_path], tmp_path / "report.md")
    seeds, runs = text.split("## Over seeds")[1].split("## Runs")
    assert "| experiment | recipe | overrides |" in seeds
    assert "| basicprop_line | layer_norm | `experiment=basicprop_line` | 1 | 0 | ? | 0/1 |" in seeds
    assert "| basicprop_line | layer_norm_g_average | `experiment=basicprop_line` | 2 | 0,1 | ? | 2/2 |" in seeds
    study = "| basicprop_line | study | `experiment=basicprop_line` | 1 | 0 | ? | 0/1 |"
    assert study in seeds  # recipe=study is named once, in its column, not again among the overrides
    assert "| study/0 | basicprop_line | study | 0 |" in runs


def test_report_lists_a_sweeps_jobs_in_launch_order(tmp_path):
    for job in (0, 1, 2, 10, 11):
        _run(tmp_path, f"sweep/{job}", job, LINE_OK)
    assert [p.name for p in report.find_runs([tmp_path])] == ["0", "1", "2", "10", "11"]
