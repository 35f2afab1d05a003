"""The benchmark commands run end to end at toy sizes and print their tables (the figures come from `make bench`).
Benchmarks: `make test-slow` runs these."""

import re
from pathlib import Path

import pytest

from infogan_pl.bench import speed
from tests.helpers import compose_config


@pytest.mark.slow
def test_speed_bench_prints_parity_data_fast_path_and_batch_tables(tmp_path, capsys, mnist_dir):
    args = ["--batch", "16", "--iters", "2", "--warmup", "1", "--rounds", "1", "--accelerator", "cpu"]
    args += ["--variants", "model.channels_last=true;model.compile_mode=bogus", "--max-batch", "64"]
    args += ["--out", str(tmp_path)]
    assert speed.main([*args, "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    ratio = re.search(r"^\| [\d.]+ \| [\d.]+ \| ([\d.]+) \| [\d.]+ \|$", out, re.M)
    assert ratio and float(ratio.group(1)) > 0
    sources = re.findall(r"^\| (basicprop \w+, noise \w+|mnist) \| \d+ \| \d+x \|$", out, re.M)
    assert len(sources) == 5  # line / rectangles x clean / noisy, and MNIST
    assert re.search(r"^\| model.channels_last=true \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", out, re.M)
    assert re.search(r"^\| model.compile_mode=bogus \| failed: ConfigError: .* \| \| \|$", out, re.M)  # and it went on
    assert re.search(r"^\| 64 \| [\d.]+ \| \d+ \|$", out, re.M)  # one batch size, run in its own process
    assert not list(tmp_path.glob("run-*"))  # every fit's run dir was removed


def test_every_fast_path_the_bench_times_is_a_valid_override_set():
    for device, spec in speed.FAST_PATHS.items():
        for variant in spec.split(";"):
            cfg = compose_config(["experiment=basicprop_line", *variant.split(",")], Path("/tmp/unused"))
            assert cfg.trainer.precision in ("32-true", "bf16-mixed", "16-mixed"), (device, variant)
    assert "trainer.benchmark=true" in speed.FAST_PATHS["cuda"] and "16-mixed" in speed.FAST_PATHS["cuda"]


@pytest.mark.slow
def test_quality_bench_trains_variants_side_by_side_and_prints_medians(tmp_path, capsys, mnist_dir):
    from infogan_pl.bench import quality

    args = ["--seeds", "2", "--epochs", "1", "--jobs", "2", "--variants", "baseline,consistency", "--cost-iters", "2"]
    args += ["--data-dir", str(mnist_dir), "--out", str(tmp_path)]
    overrides = ["data.train_size=64", "data.val_size=48", "data.batch_size=32", "+model.generator.hidden=64"]
    overrides += ["+model.discriminator.hidden=64", "callbacks.evaluation.real=48", "callbacks.evaluation.fid=32"]
    assert quality.main([*args, *overrides]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (baseline|consistency) \| (\d) \| ([\d.]+) \|", out, re.M)
    assert sorted((v, s) for v, s, _ in rows) == [
        ("baseline", "0"),
        ("baseline", "1"),
        ("consistency", "0"),
        ("consistency", "1"),
    ]
    assert re.search(
        r"^\| consistency \| [0-2]/2 \| [\d.]+ \([\d.]+–[\d.]+\) \|", out, re.M
    )  # median (range) over seeds
    assert re.search(r"^\| consistency \| [\d.]+ \| [\d.]+ \|$", out, re.M)  # s / iteration and x baseline
    assert (tmp_path / "consistency" / "seed1" / "summary.json").is_file()
    # FID of each final checkpoint by `evaluate`, the last cell of its row
    assert re.search(r"^\| baseline \| 1 \| [\d.]+ \| -?[\d.]+ \| -?[\d.]+ \| [\d.]+ \|$", out, re.M)
    assert (tmp_path / "baseline" / "seed1" / "checkpoints" / "eval_last" / "metrics.json").is_file()
    assert re.search(r"^\| (baseline|consistency) \| 2 \| [\d.]+ \(", out, re.M)  # best of 2 restarts, no label read
