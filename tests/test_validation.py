"""The pre-flight check: every rule is its owner's (a constructor's) one-line refusal, seen before anything runs."""

import pytest

from infogan_pl.build import ConfigError
from infogan_pl.cli import command_line_error
from infogan_pl.train import train
from infogan_pl.validation import validate
from tests.helpers import assert_refused, compose_config, run_cli, tiny_overrides

BAD = [
    (["model.lambda_info=-1"], "model.lambda_info must be >= 0"),
    (["latent.categorical=[1]"], "latent.categorical sizes must each be >= 2"),
    (["latent.z_dim=0", "latent.categorical=[]", "latent.continuous=0"], "latent spec is empty"),
    (["model.lr_d=0"], "model.lr_d must be > 0"),
    (["model.lr_g=-1e-3"], "model.lr_g must be > 0"),
    (["model.lr_q=0"], "model.lr_q must be > 0"),
    (["noise=gaussian", "noise.std=-0.1"], "noise.std must be >= 0"),
    (["noise.schedule=cosine"], "noise.schedule must be one of"),
    (["noise.where=edges"], "noise.where must be one of"),
    (["data.batch_size=100000"], "data.batch_size=100000 is larger than the training set"),
    (["data.batch_size=0"], "data.batch_size must be > 0"),
    (["data.variant=circles"], "data.variant must be one of ('line', 'rectangles', 'translation'"),
    (["data.noise=pink"], "data.noise must be one of"),
    (["latent.z_dim=-3"], "must be >= 0"),
    (["latent.z_prior=laplace"], "latent.z_prior must be"),
    (["model.betas=[0.5,1.5]"], "model.betas must be two numbers"),
    (["model.nan.policy=retry"], "model.nan.policy must be one of"),
    (["model.d_steps_per_g=0"], "model.d_steps_per_g must be >= 1"),
    (["model.lr_end_factor=1.5"], "model.lr_end_factor must be in [0, 1]"),
    (["model.lr_decay_start=-1"], "model.lr_decay_start must be >= 0"),
    (["model.scheduler=foo"], "model.scheduler must be null or a partial"),
    (["model.optimizer_d=sgd"], "model.optimizer_d must be null or a partial"),
    (["trainer.max_steps=0"], "nothing to train"),
    (["trainer.max_steps=-1", "trainer.max_epochs=-1"], "training would never end"),
    (["trainer=ddp_cpu", "trainer.devices=1"], "DDP with one device"),
    (["model=infogan", "latent=noise_only"], "InfoGAN needs latent codes"),
    (["experiment=celeba_infogan", "model=infogan"], "the MNIST networks take 28x28 images but the data gives 32x32"),
    (["experiment=celeba_infogan", "data.image_size=48"], "take 32 or 64 px images"),
    (["callbacks.model_checkpoint.every_n_train_steps=-1"], "every_n_train_steps"),
    (["trainer.val_check_interval=0"], "val_check_interval must be > 0"),
    (["seed=abc"], "seed must be an integer"),
    (["model.discriminator.leaky_slope=2"], "leaky_slope must be in [0, 1)"),
    (["callbacks.evaluation.bn=batch"], "callbacks.evaluation.bn must be one of"),
    # types and names, judged against the owner's signature
    (["trainer.max_steps=abc"], "trainer.max_steps must be int, got 'abc'"),
    (["data.batch_size=lots"], "data.batch_size must be int, got 'lots'"),
    (["model.lr_d=fast"], "model.lr_d must be float, got 'fast'"),
    (["trainer.precision=bogus"], "trainer.precision must be"),
    (["+model.lamda_info=0.5"], "model.lamda_info is not a setting of infogan_pl.models.InfoGAN (did you mean"),
    (["+data.batchsize=8"], "data.batchsize is not a setting of infogan_pl.data.BasicPropDataModule"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_configuration_is_refused_with_one_clear_line(overrides, message, tmp_path, mnist_dir):
    experiment = "celeba_infogan" if "experiment=celeba_infogan" in overrides else "basicprop_line"
    cfg = compose_config([*tiny_overrides(experiment, mnist_dir), *overrides], tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_good_configuration_passes_and_writes_nothing(tmp_path, mnist_dir):
    validate(compose_config(tiny_overrides("mnist_infogan", mnist_dir), tmp_path / "run"), tmp_path / "run")
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == []


def test_missing_mnist_is_refused_before_training_naming_make_data(tmp_path):
    cfg = compose_config(["experiment=mnist_infogan", f"paths.data_dir={tmp_path}", "data.download=false"], tmp_path)
    with pytest.raises(ConfigError, match="run `make data`"):
        validate(cfg)


def test_checkpoint_faults_are_refused(tmp_path, mnist_dir):
    run = tmp_path / "run"
    train(compose_config(tiny_overrides("basicprop_line", mnist_dir), run))
    ckpt = run / "checkpoints" / "last.ckpt"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    cases = [
        (tmp_path / "none.ckpt", "not found"),
        (truncated, "is not a readable checkpoint"),
        (run, "is a directory"),
    ]
    for path, message in cases:
        cfg = compose_config([*tiny_overrides("basicprop_line", mnist_dir), f"ckpt_path={path}"], tmp_path / "x")
        with pytest.raises(ConfigError, match=message):
            validate(cfg)
    other = compose_config(
        [*tiny_overrides("basicprop_line", mnist_dir), "latent.continuous=3", f"ckpt_path={ckpt}"], tmp_path / "y"
    )
    with pytest.raises(
        ConfigError, match="was trained with latent=.*'continuous': 2.*this run has latent=.*'continuous': 3"
    ):
        validate(other)
    empty = compose_config([*tiny_overrides("basicprop_line", mnist_dir), "ckpt_path=last"], tmp_path / "empty")
    with pytest.raises(ConfigError, match="ckpt_path=last: no checkpoint in"):
        validate(empty)


def test_a_sweep_is_checked_where_it_is_launched_without_the_jobs_devices_or_checkpoints(tmp_path, mnist_dir):
    # a SLURM login node has no GPU, and each job resumes from its own directory
    cfg = compose_config(
        [*tiny_overrides("basicprop_line", mnist_dir), "trainer.accelerator=gpu", "ckpt_path=last"], tmp_path
    )
    validate(cfg, tmp_path / "sweep", sweep=True)
    with pytest.raises(ConfigError):
        validate(cfg, tmp_path / "run")


def test_ckpt_path_auto_resumes_when_there_is_a_checkpoint_and_starts_fresh_otherwise(tmp_path, mnist_dir):
    from infogan_pl.checkpointing import resume_path

    cfg = compose_config([*tiny_overrides("basicprop_line", mnist_dir), "ckpt_path=auto"], tmp_path)
    assert resume_path(cfg, tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resume_path(cfg, tmp_path) == tmp_path / "checkpoints" / "last.ckpt"


HYDRA_REFUSES = [  # what Hydra itself refuses while composing, before any of our code runs
    (["model.lamda_info=0.5"], "model.lamda_info is not a key of the configuration (did you mean model.lambda_info?)"),
    (["experiment=mnist_infogann"], "experiment=mnist_infogann: there is no such experiment config (did you mean"),
    (["data=mnistt"], "did you mean data=mnist?"),
    (["experiment=basicprop_line", "trainer.max_stepz=3"], "did you mean trainer.max_steps?"),
    (["-m", "experiment=basicprop_line", "model.lamda_info=0,1"], "did you mean model.lambda_info?"),
    (["+sweep=lambda_lr", "experiment=basicprop_lin"], "did you mean experiment=basicprop_line?"),
    (["model.lambda_info=["], "an override is key=value"),
]


@pytest.mark.parametrize(("argv", "message"), HYDRA_REFUSES, ids=[" ".join(a) for a, _ in HYDRA_REFUSES])
def test_what_hydra_refuses_is_one_line(argv, message):
    assert message in command_line_error("config", argv) and "\n" not in command_line_error("config", argv)


def test_good_command_lines_compose():
    for argv in (
        ["experiment=mnist_infogan", "model.lambda_info=0.5"],
        ["-m", "experiment=basicprop_line", "model.lambda_info=0,0.5,1", "hydra/launcher=joblib"],
        ["+sweep=optuna", "experiment=basicprop_line", "hydra.sweeper.n_trials=3"],
        ["experiment=mnist_infogan", "--cfg", "job"],
        ["--help"],
    ):
        assert command_line_error("config", argv) is None, argv


def test_a_misspelt_key_or_experiment_on_the_command_line_is_exit_2_one_line_nothing_written(tmp_path):
    # the other cases are test_what_hydra_refuses_is_one_line's: here, that both entry points use the check
    assert_refused(run_cli(["-m", "experiment=mnist_infogann"], tmp_path), "did you mean experiment=mnist_infogan?")
    assert_refused(run_cli(["stepz=5", "ckpt_path=x"], tmp_path, module="infogan_pl.semi_supervised"), "steps?")
    assert not list(tmp_path.iterdir())
