"""Experiment trackers (`log.backends`): what MLflow and W&B keep of a run, read back with their
own tools; TensorBoard's events; refusals before training; a tracker failing mid-run. Nothing
here reaches the network: W&B runs offline, MLflow in the run folder's store, telemetry is off,
and a connection to another machine fails the test."""

import ipaddress
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from effvid.cli import main
from effvid.distributed import setup_distributed
from effvid.train.config import ConfigError, load_config
from effvid.train.loggers import (
    BACKENDS,
    TRACKER_RECORD,
    ExperimentLogger,
    ExperimentLoggers,
    TensorBoardLogger,
    TrackedRun,
    TrackerError,
)
from effvid.train.plots import plot_training_curves
from effvid.train.recipe_schema import LOG_BACKENDS
from effvid.train.run_folder import flatten
from effvid.train.trainer import Trainer
from tests.conftest import tiny_recipe


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """W&B offline with all its folders in tmp_path, MLflow without a server or telemetry, and
    a guard that fails the test on any connection to another machine."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT",
                 "WANDB_ENTITY", "WANDB_API_KEY", "WANDB_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "wandb_home"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR",
                 "WANDB_ARTIFACT_DIR"):  # fmt: skip
        (home / name.lower()).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / name.lower()))
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true",
                        "WANDB_ERROR_REPORTING": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                        "DO_NOT_TRACK": "true"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    attempts = []
    connect = socket.socket.connect

    def this_machine_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(address)
            raise OSError(f"tests reach no network ({address})")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", this_machine_only)
    yield
    assert not attempts, f"a tracker tried the network: {attempts}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _train(videos: Path, run_dir: Path, backends: list[str], epochs: int = 1) -> Trainer:
    recipe = tiny_recipe(videos, run_dir, train__epochs=epochs, eval__clips=1)
    recipe["log"] = {"backends": backends}
    trainer = Trainer(load_config(recipe), setup_distributed("cpu"), progress=False)
    trainer.fit()
    return trainer


def _metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _files(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file in `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- MLflow ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_mlflow_keeps_the_recipe_the_metrics_the_confusion_matrix_and_the_model(
    tiny_videos, tmp_path, offline
):
    from mlflow import MlflowClient

    run_dir = tmp_path / "run"
    _train(tiny_videos, run_dir, ["mlflow"])
    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("effvid")
    [record] = client.search_runs([experiment.experiment_id])
    run_id = record.info.run_id
    assert record.info.status == "FINISHED" and record.info.run_name == "run"
    assert json.loads((run_dir / TRACKER_RECORD).read_text())["mlflow"]["run_id"] == run_id

    recipe = yaml.safe_load((run_dir / "config.yaml").read_text())
    params = record.data.params
    assert set(params) == set(flatten(recipe))
    assert params["model.name"] == "vmf_xxs" and params["train.lr"] == "0.002"
    assert params["log.backends"] == '["mlflow"]' and params["train.epochs"] == "1"

    rows = _metric_rows(run_dir)
    assert set(record.data.metrics) == set(rows[0]) - {"epoch"}
    for key in record.data.metrics:
        history = [(m.step, m.value) for m in client.get_metric_history(run_id, key)]
        assert history == [(row["epoch"], row[key]) for row in rows], key

    names = {item.path for item in client.list_artifacts(run_id)}
    assert {"best_confusion.png", "config.yaml", "model"} <= names
    confusion = client.download_artifacts(run_id, "best_confusion.png", str(tmp_path))
    assert Path(confusion).read_bytes() == (run_dir / "best_confusion.png").read_bytes()
    model = Path(client.download_artifacts(run_id, "model", str(tmp_path / "down")))
    assert _files(model) == _files(run_dir / "model")

    _train(tiny_videos, run_dir, ["mlflow"], epochs=2)  # continues the folder's run
    [record] = client.search_runs([experiment.experiment_id])
    assert record.info.run_id == run_id and record.info.status == "FINISHED"
    assert record.data.params["train.epochs"] == "1"  # MLflow keeps a param's first value
    losses = [(m.step, m.value) for m in client.get_metric_history(run_id, "train_loss")]
    assert losses == [(row["epoch"], row["train_loss"]) for row in _metric_rows(run_dir)]
    assert [step for step, _ in losses] == [1, 2]


# --- Weights & Biases -----------------------------------------------------------------------


def _wandb_records(run_folder: Path) -> list[dict]:
    """The records of one offline W&B run folder, as W&B itself reads them back."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_folder)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _history(records: list[dict]) -> dict[int, dict]:
    return {r["history"]["step"]["num"]: r["history"]["item"] for r in records
            if r["type"] == "history"}  # fmt: skip


@pytest.mark.slow
def test_wandb_offline_keeps_the_recipe_the_metrics_the_confusion_matrix_and_the_model(
    tiny_videos, tmp_path, offline
):
    run_dir = tmp_path / "run"
    _train(tiny_videos, run_dir, ["wandb"])
    run_id = json.loads((run_dir / TRACKER_RECORD).read_text())["wandb"]["run_id"]
    [folder] = (run_dir / "wandb").glob(f"offline-run-*-{run_id}")
    assert (folder / f"run-{run_id}.wandb").is_file()
    records = _wandb_records(folder)
    [started] = [r["run"] for r in records if r["type"] == "run"]
    assert started["project"] == "effvid" and started["display_name"] == "run"

    config = {}
    for record in records:
        if record["type"] == "config":
            config.update(record["config"]["update"])
    recipe = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert {key: config[key] for key in recipe} == recipe

    history = _history(records)
    rows = _metric_rows(run_dir)
    assert sorted(history) == [row["epoch"] for row in rows]
    for row in rows:
        logged = history[row["epoch"]]
        assert {key: logged[key] for key in row if key != "epoch"} == {
            key: value for key, value in row.items() if key != "epoch"
        }
    picture = history[1]["best_confusion.path"]
    assert (folder / "files" / picture).read_bytes() == (
        run_dir / "best_confusion.png"
    ).read_bytes()

    [artifact] = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert artifact["name"] == f"model-{run_id}" and artifact["type"] == "model"
    contents = {item["path"]: int(item["size"]) for item in artifact["manifest"]["contents"]}
    assert contents == {name: len(data) for name, data in _files(run_dir / "model").items()}
    [exit_record] = [r["exit"] for r in records if r["type"] == "exit"]
    assert exit_record.get("exit_code", 0) == 0

    _train(tiny_videos, run_dir, ["wandb"], epochs=2)  # continues the same W&B run
    assert json.loads((run_dir / TRACKER_RECORD).read_text())["wandb"]["run_id"] == run_id
    first, second = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert first == folder
    continued = _history(_wandb_records(second))
    assert sorted(continued) == [2]
    assert continued[2]["train_loss"] == _metric_rows(run_dir)[1]["train_loss"]


# --- TensorBoard ----------------------------------------------------------------------------


def _tensorboard_tags(folder: Path) -> dict[str, list]:
    """{tag: [(step, kind)]} of every event file in `folder` (TFRecord framing: length,
    its CRC, the Event, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    tags: dict[str, list] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                tags.setdefault(value.tag, []).append((event.step, kind))
    return tags


def test_tensorboard_events_hold_the_recipe_the_scalars_and_the_picture(tmp_path):
    picture = plot_training_curves(
        [{"epoch": 1, "train_loss": 2.0, "train_top1": 10.0}], tmp_path / "best_confusion.png"
    )
    run = TrackedRun(tmp_path, load_config(None)["log"], start_epoch=0)
    tracker = TensorBoardLogger(run)
    tracker.log_params(load_config(None))
    tracker.log_metrics({"train_loss": 2.5, "val_top1": 40.0}, 1)
    tracker.log_metrics({"train_loss": 2.0, "val_top1": 50.0}, 2)
    tracker.log_figure(picture, 2)
    tracker.close()
    tags = _tensorboard_tags(tmp_path / "tensorboard")
    assert tags["train_loss"] == [(1, "simple_value"), (2, "simple_value")]
    assert tags["val_top1"] == [(1, "simple_value"), (2, "simple_value")]
    assert tags["best_confusion"] == [(2, "image")]
    assert [kind for _, kind in tags["recipe/text_summary"]] == ["tensor"]


# --- refusals and failures ------------------------------------------------------------------


def test_an_unknown_backend_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError) as refused:
        load_config(None, ["log.backends=[tensorboard, neptune]"])
    assert str(refused.value) == (
        "log.backends: unknown backend 'neptune' (known: tensorboard, mlflow, wandb)"
    )
    with pytest.raises(ConfigError, match=r"log\.backends names 'mlflow' twice"):
        load_config({"log": {"backends": ["mlflow", "mlflow"]}})
    assert load_config(None)["log"]["backends"] == ["tensorboard"]
    assert tuple(BACKENDS) == LOG_BACKENDS


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [("mlflow", "mlflow", "mlflow"), ("mlflow", "sqlalchemy", "mlflow"),
     ("wandb", "wandb", "wandb")],
)  # fmt: skip
def test_a_missing_tracker_package_stops_training_before_it_starts(
    backend, module, extra, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, module, None)  # its import fails
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    status = main(["train", "--device", "cpu", f"output.dir={run_dir}",
                   f"log.backends=[tensorboard, {backend}]"])  # fmt: skip
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [
        f"effvid: error: this needs the '{module}' package: pip install 'effvid[{extra}]'"
    ]
    assert not run_dir.exists()  # nothing was done


def test_a_tracker_that_cannot_start_stops_training_in_one_line(tmp_path, offline):
    log = load_config(None, ["log.backends=[tensorboard, mlflow]"])["log"]
    run = TrackedRun(tmp_path, {**log, "mlflow_tracking_uri": "nosuch://server"})
    with pytest.raises(TrackerError, match=r"^mlflow: cannot start a run in nosuch://server: "):
        ExperimentLoggers.open(run, load_config(None))
    assert not (tmp_path / TRACKER_RECORD).exists()


class _Recorder(ExperimentLogger):
    """A tracker that records its calls; `fail_on`: the call it raises on."""

    name = "recorder"

    def __init__(self, fail_on: str = "") -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on

    @classmethod
    def check(cls, run):
        pass

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if what == self.fail_on:
            raise ConnectionError("the server went away\nmid-request")

    def log_params(self, recipe):
        self._call("params")

    def log_metrics(self, metrics, step):
        self._call(f"metrics {step}")

    def log_figure(self, path, step):
        self._call(f"figure {step}")

    def log_model_folder(self, path):
        self._call("model")

    def close(self, failed=False):
        self._call(f"close failed={failed}")


def test_a_tracker_failing_mid_run_is_dropped_and_the_others_go_on(tmp_path, caplog):
    failing, steady = _Recorder(fail_on="metrics 2"), _Recorder()
    loggers = ExperimentLoggers([failing, steady])
    for step in (1, 2, 3):
        loggers.log_metrics({"train_loss": 1.0}, step)
    loggers.log_model_folder(tmp_path)
    loggers.close()
    assert failing.calls == ["metrics 1", "metrics 2", "close failed=True"]
    assert steady.calls == ["metrics 1", "metrics 2", "metrics 3", "model", "close failed=False"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        "recorder: could not log metrics (the server went away mid-request); the training "
        "goes on without it"
    )
