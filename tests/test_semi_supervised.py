"""The study's Appendix D: InfoGAN as data augmentation for a classifier with few labels."""

import json

import pytest
import torch

from infogan_pl.evaluate import load_checkpoint
from infogan_pl.metrics.lenet import mnist_tensors
from infogan_pl.semi_supervised import generate_set, labelled_subset, map_values_to_classes
from infogan_pl.train import train
from tests.helpers import compose_config, run_cli, tiny_overrides


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, mnist_dir):
    run = tmp_path_factory.mktemp("infogan")
    train(compose_config(tiny_overrides("mnist_infogan", mnist_dir), run))
    return run / "checkpoints" / "last.ckpt"


def test_the_mapping_reads_only_the_labels_it_is_allowed(checkpoint, mnist_dir):
    _, _, model, _ = load_checkpoint(checkpoint)
    (images, labels), _ = mnist_tensors(mnist_dir)
    idx, visited = labelled_subset(labels, per_class=3, seed=0)
    assert len(idx) == 30 and torch.bincount(labels[idx], minlength=10).tolist() == [3] * 10
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    unseen = order[visited:]  # images whose labels were never read
    assert len(unseen) > 100
    scrambled = labels.clone()
    scrambled[unseen] = (labels[unseen] + 1 + torch.randint(9, (len(unseen),))) % 10  # every one of them wrong
    same_idx, _ = labelled_subset(scrambled, per_class=3, seed=0)
    assert torch.equal(idx, same_idx)
    a = map_values_to_classes(model, images[idx], labels[idx])
    b = map_values_to_classes(model, images[same_idx], scrambled[same_idx])
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(10))  # one to one for ten values


def test_the_generated_set_has_the_requested_size_and_class_balance(checkpoint):
    _, _, model, _ = load_checkpoint(checkpoint)
    mapping = torch.tensor([3, 1, 4, 0, 9, 2, 6, 5, 8, 7])
    images, labels = generate_set(model, mapping, per_value=7, seed=0)
    assert images.shape == (70, 1, 28, 28) and float(images.abs().max()) <= 1
    assert torch.bincount(labels, minlength=10).tolist() == [7] * 10
    again, _ = generate_set(model, mapping, per_value=7, seed=0)
    assert torch.equal(images, again)  # reproducible from the seed


def test_the_command_prints_and_writes_the_table_for_each_n(checkpoint, tmp_path):
    args = [f"ckpt_path={checkpoint}", "labels_per_class=[1,2]", "generated_per_value=5", "classifier_seeds=[0,1]"]
    done = run_cli([*args, "steps=5"], tmp_path, module="infogan_pl.semi_supervised")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| 1 | " in done.stdout and "| 2 | " in done.stdout and "+ generated" in done.stdout
    out = checkpoint.parent / "semi_supervised"
    results = json.loads((out / "results.json").read_text())
    assert set(results["rows"]) == {"1", "2"} and len(results["rows"]["1"]["+ generated"]) == 2
    assert (out / "accuracy_vs_labels.png").is_file() and list(tmp_path.iterdir()) == []  # nothing in the cwd


def test_a_checkpoint_without_a_categorical_code_is_refused_in_one_line(tmp_path, mnist_dir):
    train(compose_config(tiny_overrides("mnist_vanilla_gan", mnist_dir), tmp_path / "gan"))
    done = run_cli(
        [f"ckpt_path={tmp_path / 'gan' / 'checkpoints' / 'last.ckpt'}"], tmp_path, module="infogan_pl.semi_supervised"
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("steps", -5, "steps must be a whole number >= 1"),
        ("generated_per_value", 0, "generated_per_value must be"),
        ("labels_per_class", [0], "labels_per_class must be"),
        ("classifier_seeds", [], "classifier_seeds must be"),
    ],
)
def test_unusable_budgets_are_refused_before_the_checkpoint_is_read(key, value, message):
    from omegaconf import OmegaConf

    from infogan_pl.build import ConfigError
    from infogan_pl.semi_supervised import check_settings

    cfg = OmegaConf.create({"labels_per_class": [1, 5], "steps": 10, "generated_per_value": 5, "classifier_seeds": [0]})
    cfg[key] = value
    with pytest.raises(ConfigError, match=message):
        check_settings(cfg)
