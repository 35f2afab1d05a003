"""`make bench-speed`: the framework against a plain PyTorch loop, the data side, and a batch-size table.

1. Parity: Trainer + InfoGAN LightningModule (CSV logger, progress bar, checkpoint and evaluation callbacks as in a
   real run; validation outside the timed window) against a hand-written loop of the same networks, losses,
   optimizers, data and batch size, in one process, alternating rounds after a warm-up. Prints images/s and ratio.
2. Data: images/s each DataModule renders on the device, against what one training step consumes.
3. Batch sizes: images/s and peak memory over the timed iterations per batch size (each in a fresh subprocess):
   CUDA allocator peak, or on CPU the peak resident set size (reset before the window, so evaluation and start-up
   allocations do not count; it includes the interpreter, torch and the model, about 0.8 GiB).
4. Fast paths: every option of the config that may make training faster on this device (`FAST_PATHS`), timed as
   part of the first `--variant-rounds` rounds of (1), against the default in the same rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from infogan_pl.build import build, build_callbacks, build_loggers, build_trainer
from infogan_pl.config import CONFIG_DIR
from infogan_pl.losses import discriminator_loss, generator_loss, mutual_information_lower_bound


class _Timer(L.Callback):
    """Times training iterations [warmup, warmup + iters) of a fit, and the peak memory inside that window."""

    def __init__(self, warmup: int, iters: int) -> None:
        self.warmup, self.iters, self.start, self.end, self.peak_mib = warmup, iters, None, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.iteration == self.warmup:
            _sync(pl_module.device)
            _reset_peak(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.warmup + self.iters:
            _sync(pl_module.device)
            self.end = time.perf_counter()
            self.peak_mib = _peak_mib(pl_module.device)


def _reset_peak(device) -> None:
    """Start a new peak: CUDA's allocator statistics, or the process's peak RSS (Linux: clear_refs 5)."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")


def _peak_mib(device) -> float:
    """Peak CUDA memory allocated, or the peak resident set size of the process, since `_reset_peak`."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the whole process's peak


# The fast-path options worth timing per device type, as override sets. 16-mixed and cudnn.benchmark are GPU-only
# (Lightning turns 16-mixed into bf16 on a CPU; cudnn.benchmark does nothing there).
FAST_PATHS = {
    "cpu": "trainer.precision=bf16-mixed;model.channels_last=true;model.compile=true",
    "cuda": "trainer.precision=bf16-mixed;trainer.precision=16-mixed;model.channels_last=true;model.compile=true;"
    "model.compile=true,model.compile_mode=reduce-overhead;trainer.benchmark=true;"
    "trainer.precision=bf16-mixed,model.channels_last=true,trainer.benchmark=true",
}


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _config(batch: int, accelerator: str, extra: list[str], out: str):
    """The timed run's config: `basicprop_line` (100,000 rendered images) unless `extra` names an experiment."""
    base = (
        []
        if any(o.startswith("experiment=") for o in extra)
        else ["experiment=basicprop_line", "data.train_size=100000"]
    )
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[
                *base,
                "logger=csv",
                f"data.batch_size={batch}",
                "trainer.val_check_interval=100000",
                f"trainer.accelerator={accelerator}",
                "trainer.enable_model_summary=false",
                f"paths.root_dir={out}",
                f"paths.output_dir={out}",
                *extra,
            ],
        )


def framework_rate(batch: int, iters: int, warmup: int, accelerator: str, extra: list[str], out: str) -> float:
    return framework_run(batch, iters, warmup, accelerator, extra, out)[0]


def framework_run(
    batch: int, iters: int, warmup: int, accelerator: str, extra: list[str], out: str
) -> tuple[float, float]:
    """Images/s of the framework's training and its peak memory (MiB) over the timed iterations."""
    Path(out).mkdir(parents=True, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="run-", dir=out)  # a fresh run dir: checkpoints of earlier fits don't pile up
    try:
        cfg = _config(batch, accelerator, extra + [f"trainer.max_steps={2 * (warmup + iters + 1)}"], run_dir)
        datamodule, model = build(cfg)
        timer = _Timer(warmup, iters)
        trainer = build_trainer(cfg, callbacks=[*build_callbacks(cfg), timer], loggers=build_loggers(cfg))
        trainer.fit(model, datamodule=datamodule)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return batch * iters / (timer.end - timer.start), timer.peak_mib


def plain_rate(batch: int, iters: int, warmup: int, accelerator: str, out: str) -> float:
    """The loop a researcher would write: same nets, losses, optimizers, data rendering and batch."""
    cfg = _config(batch, accelerator, [], out)
    device = torch.device(
        "cuda" if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()) else "cpu"
    )
    datamodule, model = build(cfg)
    latent = model.latent
    model = model.to(device)
    g, d, q = model.generator, model.discriminator, model.q_head
    betas = tuple(cfg.model.betas)
    opt_d = torch.optim.Adam(
        [{"params": d.parameters(), "lr": cfg.model.lr_d}, {"params": q.parameters(), "lr": cfg.model.lr_q}],
        betas=betas,
    )
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.model.lr_g, betas=betas)
    sampler = datamodule._sampler(len(datamodule.train_set), True)
    keys = iter(sampler)
    lam = cfg.model.lambda_info
    start = None
    for i in range(warmup + iters):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        try:
            k = next(keys)
        except StopIteration:
            keys = iter(sampler)
            k = next(keys)
        real, _ = datamodule.train_set[k.to(device)]
        z, codes = latent.sample(batch, device=device)
        fake = g(z)
        for p in g.parameters():
            p.requires_grad_(False)
        rl, _ = d(real)
        fl, ff = d(fake.detach())
        loss = discriminator_loss(rl, fl) - lam * mutual_information_lower_bound(q(ff), codes)["total"]
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        for p in g.parameters():
            p.requires_grad_(True)
        for p in [*d.parameters(), *q.parameters()]:
            p.requires_grad_(False)
        gl, gf = d(fake)
        loss = generator_loss(gl) - lam * mutual_information_lower_bound(q(gf), codes)["total"]
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        for p in [*d.parameters(), *q.parameters()]:
            p.requires_grad_(True)
    _sync(device)
    return batch * iters / (time.perf_counter() - start)


def data_rates(
    device: torch.device, batch: int, data_dir: str = "data", n: int = 50, repeats: int = 3
) -> dict[str, float]:
    """Images/s each data source renders on `device` (keys -> images), whole batches, best of `repeats`."""
    from infogan_pl.data import BasicPropDataModule, MNISTDataModule
    from infogan_pl.data.sampling import on_device

    sources = {
        f"basicprop {v}, noise {noise}": BasicPropDataModule(v, batch_size=batch, noise=noise).train_set
        for v in ("line", "rectangles")
        for noise in ("none", "both")
    }
    try:
        dm = MNISTDataModule(data_dir=data_dir, batch_size=batch, download=False)
        dm.setup()
        sources["mnist"] = dm.train_set
    except RuntimeError as err:
        print(f"(MNIST left out of the data table: {err})")
    rates = {}
    for name, ds in sources.items():
        ds = on_device(ds, device)
        keys = torch.randint(0, len(ds), (n, batch), device=device)
        ds[keys[0]]  # warm-up
        best = float("inf")
        for _ in range(repeats):  # best of `repeats`: the first pass of the first source pays one-off costs
            _sync(device)
            t = time.perf_counter()
            for k in keys:
                ds[k]
            _sync(device)
            best = min(best, time.perf_counter() - t)
        rates[name] = batch * n / best
    return rates


def one_batch_size(batch: int, iters: int, accelerator: str, out: str) -> dict:
    rate, peak = framework_run(batch, iters, 2, accelerator, ["trainer.enable_progress_bar=false"], out)
    return {"batch": batch, "images_per_s": rate, "peak_mib": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--max-batch", type=int, default=1024)
    parser.add_argument(
        "--variants",
        default="auto",
        help="';'-separated override sets (overrides within a set ','-separated); auto: FAST_PATHS of the device; none",
    )
    parser.add_argument("--variant-rounds", type=int, default=2, help="rounds that also time the variants")
    parser.add_argument("--out", default="outputs/bench_speed")
    parser.add_argument("--data-dir", default="data", help="MNIST for the data-side figure (skipped if absent)")
    parser.add_argument("--one-batch-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.one_batch_size:
        print(json.dumps(one_batch_size(args.one_batch_size, args.iters, args.accelerator, args.out)))
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() and args.accelerator != "cpu" else "cpu")
    print(
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, batch {args.batch}"
    )

    spec = {"auto": FAST_PATHS[device.type], "none": ""}.get(args.variants, args.variants)
    variants = {v: [o for o in v.split(",") if o] for v in spec.split(";") if v}
    print("\n## Parity (images/s; alternating rounds after warm-up; fast-path variants in the same rounds)")
    fw, pl, var, failed = [], [], {v: [] for v in variants}, {}
    for r in range(args.rounds):
        fw.append(framework_rate(args.batch, args.iters, args.warmup, args.accelerator, [], args.out))
        pl.append(plain_rate(args.batch, args.iters, args.warmup, args.accelerator, args.out))
        line = f"round {r}: framework {fw[-1]:.1f}, plain loop {pl[-1]:.1f}, ratio {fw[-1] / pl[-1]:.3f}"
        timed_variants = variants if r < args.variant_rounds else {}
        for v, extra in timed_variants.items():
            if failed.get(v):
                continue
            try:
                var[v].append(framework_rate(args.batch, args.iters, args.warmup, args.accelerator, extra, args.out))
                line += f"; {v} {var[v][-1]:.1f}"
            except Exception as err:  # noqa: BLE001 - a failing option is a result: report it and go on
                failed[v] = f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
                line += f"; {v} FAILED"
        print(line, flush=True)
    ratio, median = sum(fw) / sum(pl), statistics.median(f / p for f, p in zip(fw, pl, strict=True))
    mean_fw, mean_pl = sum(fw) / len(fw), sum(pl) / len(pl)
    print("| framework | plain | ratio of means | median of round ratios |\n|---|---|---|---|")
    print(f"| {mean_fw:.1f} | {mean_pl:.1f} | {ratio:.3f} | {median:.3f} |")

    print("\n## Data (images/s rendered on the device) vs the step's consumption")
    step = sum(pl) / len(pl)
    print("| source | images/s | x step |\n|---|---|---|")
    for name, rate in data_rates(device, args.batch, args.data_dir).items():
        print(f"| {name} | {rate:.0f} | {rate / step:.0f}x |")

    if variants:
        n = min(args.rounds, args.variant_rounds)
        print(
            f"\n## Fast paths (framework images/s, mean over rounds 0..{n - 1}, against the default and the plain loop)"
        )
        base, plain = sum(fw[:n]) / n, sum(pl[:n]) / n
        print("| settings | images/s | vs default | vs plain loop |\n|---|---|---|---|")
        print(f"| default | {base:.1f} | 1.00 | {base / plain:.2f} |")
        for v, rates in var.items():
            if v in failed:
                print(f"| {' '.join(variants[v])} | failed: {failed[v]} | | |")
                continue
            rate = sum(rates) / len(rates)
            print(f"| {' '.join(variants[v])} | {rate:.1f} | {rate / base:.2f} | {rate / plain:.2f} |")

    print("\n## Batch size (framework images/s, peak memory during training; one subprocess each)")
    print("| batch | images/s | peak MiB |\n|---|---|---|")
    b = 64
    while b <= args.max_batch:
        cmd = [
            sys.executable,
            "-m",
            "infogan_pl.bench.speed",
            "--one-batch-size",
            str(b),
            "--iters",
            str(max(3, args.iters // 10)),
            "--accelerator",
            args.accelerator,
            "--out",
            args.out,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {b} | failed (out of memory?) | |")
            break
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {b} | {row['images_per_s']:.1f} | {row['peak_mib']:.0f} |")
        b *= 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
