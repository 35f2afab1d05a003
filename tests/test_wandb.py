"""W&B: offline without a key, never a prompt, the run's history read back through W&B's own record schema."""

import struct

import pytest

from infogan_pl.loggers import wandb_logger, wandb_mode
from infogan_pl.train import train
from tests.helpers import compose_config, tiny_overrides

wandb_pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")
BLOCK, HEADER = 32768, 7  # a .wandb file is a LevelDB-format log of W&B protobuf Records after a 7-byte header


def read_wandb_records(path):
    """Every wandb_internal_pb2.Record in a run's .wandb transaction log (LevelDB log framing, W&B's schema)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    records, pos, chunk = [], HEADER, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a record header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            records.append(wandb_pb.Record.FromString(chunk))
            chunk = b""
    return records


def test_mode_is_offline_without_an_api_key_and_online_with_one(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode() == "offline"


def test_a_run_logs_losses_mi_and_images_to_an_offline_wandb_run(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = [*tiny_overrides("basicprop_line", mnist_dir), "logger=default"]
    train(compose_config(overrides, tmp_path))
    logs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1
    records = read_wandb_records(logs[0])
    items = [
        (tuple(item.nested_key) or (item.key,), item.value_json)
        for r in records
        if r.WhichOneof("record_type") == "history"
        for item in r.history.item
    ]
    keys = {key[0] for key, _ in items}
    assert {"loss/d", "loss/g", "mi/total", "metric/cat_acc", "trainer/global_step"} <= keys
    image_keys = {key[0] for key, value in items if key[1:] == ("_type",) and value == '"images/separated"'}
    assert image_keys and all(k.startswith(("traversal/", "figures/")) for k in image_keys), image_keys
    assert any(k.startswith("traversal/cat0") for k in image_keys)  # one key per traversal grid
    config = [r for r in records if r.WhichOneof("record_type") == "config"]
    assert any(item.key == "model" and "lambda_info" in item.value_json for r in config for item in r.config.update)
    assert any(r.WhichOneof("record_type") == "exit" for r in records)  # the run was finished


def test_wandb_that_cannot_start_gives_none_and_a_warning(tmp_path, caplog):
    assert wandb_logger(save_dir=str(tmp_path), mode="not-a-mode", project="x" * 200, id="bad id/with slash") is None
    assert "W&B could not start" in caplog.text


def test_the_disabled_mode_starts_no_wandb_run_and_writes_nothing(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_logger(save_dir=str(tmp_path / "run")) is None
    assert not (tmp_path / "run").exists() and "W&B could not start" not in caplog.text
    monkeypatch.setenv("WANDB_MODE", "offline")  # the config's mode wins over the environment's
    assert wandb_logger(save_dir=str(tmp_path / "run"), mode="disabled") is None
