"""Every command of the README, run verbatim as a subprocess where a new user stands: a fresh working directory,
the default output directories (no hydra.run.dir / hydra.sweep.dir), MNIST in ./data as `make data` leaves it.
Only budget overrides are appended (a few iterations, tiny data and evaluation sets, 2 sweep points)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CLI_PRESETS, assert_refused, assert_run_outputs, run_cli, write_mnist_idx

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ENV = {"WANDB_MODE": "disabled"}  # W&B itself is tested in test_wandb.py; here it would only cost time
SMALL = ["+model.generator.hidden=64", "+model.discriminator.hidden=64", "data.train_size=64", "data.val_size=48"]
SMALL += ["data.batch_size=16"]
EVAL = ["callbacks.evaluation.real=48", "callbacks.evaluation.generated_per_value=4", "callbacks.evaluation.fid=32"]
BUDGET = ["trainer.max_steps=4", *SMALL, *EVAL, "callbacks.evaluation.mi=64"]
TWO_POINTS = ["model.lambda_info=0,1", "model.lr_d=2e-4", "model.lr_g=1e-3"]

# The README's `python -m infogan_pl experiment=<preset>` lines run as one sweep over the presets (one process: the
# imports are paid once; every preset also trains in-process in test_experiments.py).
# Every other `python -m infogan_pl` line of the README -> what the test appends to keep it short (None: nothing).
COMMANDS = {
    "python -m infogan_pl data=mnist model=gan latent=noise_only": BUDGET,
    "python -m infogan_pl --help": None,
    "python -m infogan_pl experiment=basicprop_line recipe=study": BUDGET,
    "python -m infogan_pl +sweep=seeds experiment=basicprop_line": ["seed=0,1", *BUDGET],
    "python -m infogan_pl.figures outputs/basicprop_line/<time>": None,
    "python -m infogan_pl experiment=mnist_infogan --cfg job": None,
    "python -m infogan_pl experiment=basicprop_rect model.lambda_info=0.5 model.lr_d=1e-4 seed=3": BUDGET,
    "python -m infogan_pl experiment=basicprop_rect latent.categorical=[20] latent.continuous=3 noise=linear "
    "noise.std=0.2": BUDGET,
    "python -m infogan_pl -m experiment=basicprop_line model.lambda_info=0,0.5,1": BUDGET,
    "python -m infogan_pl +sweep=lambda_lr experiment=basicprop_line": [*TWO_POINTS, *BUDGET],
    "python -m infogan_pl +sweep=lambda_lr experiment=basicprop_line hydra/launcher=joblib hydra.launcher.n_jobs=4": [
        *TWO_POINTS,
        *BUDGET,
    ],
    "python -m infogan_pl +sweep=optuna experiment=basicprop_line hydra.sweeper.n_trials=30": [
        "hydra.sweeper.n_trials=2",
        *BUDGET,
    ],
    "python -m infogan_pl -m experiment=basicprop_rect model.lambda_info=0.5,1 seed=0,1,2": ["seed=0", *BUDGET],
    # no SLURM here: the command composes and names submitit's launcher (--cfg hydra prints, submits nothing)
    "python -m infogan_pl +sweep=lambda_lr experiment=basicprop_rect hydra/launcher=slurm "
    "hydra.launcher.partition=gpu trainer=gpu": ["--cfg", "hydra"],
    "python -m infogan_pl.evaluate ckpt_path=outputs/basicprop_line/<time>/checkpoints/last.ckpt": [
        "budget.real=48",
        "budget.generated_per_value=4",
        "budget.fid=32",
        "budget.mi=64",
    ],
    "python -m infogan_pl.report outputs/": None,
    "python -m infogan_pl.semi_supervised ckpt_path=outputs/mnist_infogan/<time>/checkpoints/last.ckpt": [
        "labels_per_class=[1,2]",
        "generated_per_value=5",
        "classifier_seeds=[0]",
        "steps=5",
    ],
    "python -m infogan_pl experiment=basicprop_line hydra.run.dir=<run dir> ckpt_path=last": [
        *BUDGET[1:],
        "trainer.max_steps=8",
    ],
}


def readme_commands() -> set[str]:
    """Every `python -m infogan_pl...` command of the README: code-block lines and inline code, comments cut."""
    found = {m.strip() for m in re.findall(r"`(python -m infogan_pl[^`]*)`", README)}
    for line in README.splitlines():
        if line.startswith("python -m infogan_pl"):
            found.add(line.split("  #")[0].strip())
    return found


def test_every_readme_command_is_tested_here():
    presets = {f"python -m infogan_pl experiment={name}" for name in CLI_PRESETS}
    assert readme_commands() == set(COMMANDS) | presets, "a README command without a test (or a test of a removed one)"


def _data_dir(root: Path, lenet_from: Path | None) -> None:
    """./data as `make data` leaves it: MNIST's IDX files (tiny here) and, if given, the cached LeNet-5."""
    write_mnist_idx(root / "data" / "MNIST" / "raw")
    if lenet_from is not None:
        for name in ("lenet_mnist.pt", "lenet_mnist.json"):
            shutil.copy(lenet_from / name, root / "data" / name)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, mnist_dir):
    """A fresh working directory with ./data, where basicprop_line has run once (for evaluate / report / resume)."""
    root = tmp_path_factory.mktemp("user")
    _data_dir(root, mnist_dir)
    for experiment in ("basicprop_line", "mnist_infogan"):
        done = run_cli([f"experiment={experiment}", *BUDGET], root, env=ENV)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root


def _run_dir(root: Path, experiment: str = "basicprop_line") -> Path:
    runs = sorted((root / "outputs" / experiment).glob("*/summary.json"))
    return runs[0].parent


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_readme_command_works_as_written(command, workspace):
    named = re.search(r"outputs/(\w+)/<time>", command)
    run_dir = _run_dir(workspace, named.group(1) if named else "basicprop_line")
    text = command.replace("<time>", run_dir.name).replace("<run dir>", str(run_dir))
    module, *args = shlex.split(text)[2:]
    extra = COMMANDS[command] or []
    done = run_cli([*args, *extra], workspace, module=module, env=ENV, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{text}\n{output[-4000:]}"
    assert "Traceback" not in output and "HydraConfig was not set" not in output
    assert "Callback ValidateConfig" not in output  # the pre-flight check ran, it was not skipped with a warning
    if module == "infogan_pl" and "--help" in args:
        assert "experiment: " in output and "mnist_infogan" in output and "model.lambda_info" in output
    elif "--cfg" in extra or "--cfg" in args:
        assert "lambda_info" in output or "SlurmLauncher" in output
    elif module == "infogan_pl" and "-m" not in args and "+sweep" not in text:
        assert "Outputs in " in output and "metric/" in output  # the metrics table and where the run went
    elif module == "infogan_pl":
        assert output.count("Outputs in ") >= 2  # at least two jobs of the sweep finished
    elif module == "infogan_pl.semi_supervised":
        assert "+ generated" in output and (run_dir / "checkpoints" / "semi_supervised" / "results.json").is_file()


def test_every_preset_command_of_the_readme_runs_in_one_sweep(workspace):
    sweep = workspace / "outputs" / "presets"  # one directory for the sweep (each preset names its own by default)
    args = [
        "-m",
        f"experiment={','.join(CLI_PRESETS)}",
        *BUDGET,
        "trainer.log_every_n_steps=1",
        f"hydra.sweep.dir={sweep}",
    ]
    done = run_cli(args, workspace, env=ENV, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "Callback ValidateConfig" not in output
    finished = {json.loads(p.read_text())["experiment"]: p.parent for p in sweep.glob("*/summary.json")}
    assert set(finished) == set(CLI_PRESETS), set(CLI_PRESETS) - set(finished)
    for experiment, run in finished.items():
        assert_run_outputs(run, experiment)


@pytest.fixture
def clone(tmp_path):
    """The repository's tracked files as a fresh clone has them, with this interpreter standing in for .venv."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed").touch()  # newer than pyproject.toml: `make` installs nothing
    return tmp_path


def _make(target: str, clone: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["make", "-s", target, f"PY={sys.executable}", *args]
    env = {**os.environ, **ENV, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, cwd=clone, capture_output=True, text=True, timeout=600, env=env)


def test_make_train_runs_the_default_experiment_in_a_fresh_clone(clone):
    done = _make("train", clone, f"ARGS={' '.join(BUDGET)}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Outputs in {clone}/outputs/basicprop_line/" in done.stdout
    assert "metric/cat_acc" in done.stdout and "metric/mig" in done.stdout


def test_make_data_skips_sound_files_and_trains_the_lenet_with_progress(clone):
    write_mnist_idx(clone / "data" / "MNIST" / "raw")
    done = _make("data", clone)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "import skipped" in done.stdout and "LeNet-5 epoch 8/8" in done.stdout and "s to go" in done.stdout
    assert (clone / "data" / "lenet_mnist.pt").is_file() and (clone / "data" / "lenet_mnist.json").is_file()


def test_an_mnist_run_without_a_cached_lenet_trains_and_says_what_it_skipped(tmp_path):
    _data_dir(tmp_path, lenet_from=None)
    done = run_cli(["experiment=mnist_infogan", *BUDGET], tmp_path, env=ENV)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: no LeNet-5")]
    assert len(notes) == 1 and "make data" in notes[0] and "metric/fid_lenet" in notes[0]
    table = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("metric/")]
    assert "metric/cat_acc" in table and "metric/fid_lenet" not in table and "metric/gen_acc" not in table


def test_a_bad_override_with_the_default_run_dir_is_one_line_and_creates_nothing(tmp_path):
    assert_refused(run_cli(["experiment=mnist_infogan", "model.lambda_info=-1"], tmp_path), "model.lambda_info")
    assert list(tmp_path.iterdir()) == []


def test_a_run_piped_to_a_file_shows_progress_lines_before_the_end(tmp_path):
    log = tmp_path / "log"
    with open(log, "w") as out:
        args = ["experiment=basicprop_line", *BUDGET, "trainer.max_steps=24", "callbacks.progress.every_n_iterations=4"]
        args.append("trainer.log_every_n_steps=4")
        proc = subprocess.Popen(
            [sys.executable, "-m", "infogan_pl", *args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **ENV, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    lines = log.read_text().splitlines()
    progress = [i for i, line in enumerate(lines) if line.startswith("iteration ")]
    assert [lines[i].split()[1] for i in progress] == ["4/12", "8/12", "12/12"]
    assert "it/s" in lines[progress[0]] and "ETA" in lines[progress[0]] and "loss/d" in lines[progress[1]]
    assert progress[-1] < next(i for i, line in enumerate(lines) if line.startswith("Outputs in "))


def test_the_built_wheel_carries_its_configs_and_runs_from_a_fresh_venv(tmp_path, clone):
    wheels = tmp_path / "wheels"  # built from a copy of the tracked files: a build leaves build/ where it runs
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(wheels),
        str(clone),
    ]
    subprocess.run(build, check=True, capture_output=True, timeout=300, cwd=clone)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site)]
    subprocess.run([*install, *map(str, wheels.glob("infogan_pl-*.whl"))], check=True, capture_output=True, timeout=300)
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").is_dir())
    (site / "deps.pth").write_text(f"{deps}\n")  # torch, lightning, hydra: from this environment, not the repo
    python, elsewhere = venv / "bin" / "python", tmp_path / "elsewhere"  # not the clone's folder
    elsewhere.mkdir()
    where = subprocess.run([python, "-c", "import infogan_pl; print(infogan_pl.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(site))  # the installed copy, not the repository's
    done = subprocess.run([python, "-m", "infogan_pl", "--help"], cwd=elsewhere, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "experiment: " in done.stdout and "basicprop_rect_two_cat" in done.stdout
