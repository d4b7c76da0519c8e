"""Experiment trackers of a training run: TensorBoard, MLflow and Weights & Biases, chosen by the
recipe's `log.backends` (default `[tensorboard]`), behind one small interface.

The trainer's main process gives every tracker the same things:
    log_params(recipe)          the resolved recipe, when the training starts
    log_metrics(row, step)      an epoch's row of metrics.jsonl without its "epoch" (step = epoch)
    log_figure(path, step)      a picture of the run: the best validation's confusion matrix
    log_model_folder(path)      the final model, at the end of training
    close(failed)               the end of the run (failed: it stopped on an error)

Where each keeps them:
    tensorboard   run_dir/tensorboard/: scalars, the recipe as text, the picture as an image (the
                  model stays in the run folder)
    mlflow        a run in `log.mlflow_tracking_uri`, else MLFLOW_TRACKING_URI, else a SQLite
                  store of the run folder's own (run_dir/mlflow/mlflow.db, artifacts in
                  run_dir/mlflow/artifacts/); params are the recipe's flattened keys
    wandb         a run of `log.wandb_project` (else WANDB_PROJECT, else "effvid"), its files in
                  run_dir/wandb/; WANDB_MODE=offline keeps it there (`wandb sync` uploads it)

A training that continues its run folder (`effvid train` again, `--resume`) continues the same
MLflow and W&B runs, whose ids `trackers.json` in the run folder keeps; one that cannot be
continued (the store moved, the run was deleted) is replaced by a new run, with a warning. A
tracker that cannot start stops the training before its first epoch, in one line (a missing
package names the extra that installs it); one that fails later is dropped with a warning and
the training goes on: the run folder holds everything the trackers get.
"""

import contextlib
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from effvid.errors import EffvidError
from effvid.extras import require
from effvid.train.config import dump_config
from effvid.train.run_folder import flatten

logger = logging.getLogger("effvid.train")

TRACKER_RECORD = "trackers.json"  # in the run folder: the tracker runs it continues
DEFAULT_NAME = "effvid"  # the MLflow experiment and the W&B project when none is given
# Schemes of the MLflow stores that SQLAlchemy (with alembic) serves.
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


class TrackerError(EffvidError):
    """An experiment tracker cannot start the run's record (a store, a server, a login)."""


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker needs to know of the training it follows.

    `log`: the recipe's `log` section; `start_epoch`: epochs done before this training (its
    first step is start_epoch + 1); `continues`: the training continues the run folder's run,
    so the tracker runs `trackers.json` records are continued too."""

    run_dir: Path
    log: Mapping[str, Any]
    start_epoch: int = 0
    continues: bool = False

    @property
    def name(self) -> str:
        return self.log["run_name"] or self.run_dir.resolve().name

    def recorded(self, backend: str) -> dict[str, Any] | None:
        """The record of `backend`'s run in trackers.json, when this training continues it."""
        path = self.run_dir / TRACKER_RECORD
        if not self.continues or not path.is_file():
            return None
        try:
            return json.loads(path.read_text()).get(backend)
        except (ValueError, AttributeError):
            logger.warning("%s is not readable: its tracker runs are not continued", path)
            return None

    def record(self, backend: str, entry: Mapping[str, Any]) -> None:
        path = self.run_dir / TRACKER_RECORD
        try:
            records = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            records = {}
        records[backend] = dict(entry)
        path.write_text(json.dumps(records, indent=1) + "\n")


class ExperimentLogger(ABC):
    """One tracker of one training run (main process only); see the module docstring."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def check(cls, run: TrackedRun) -> None:
        """MissingExtraError unless the packages this tracker needs for `run` are installed."""

    @abstractmethod
    def log_params(self, recipe: Mapping[str, Any]) -> None:
        """The resolved recipe (sections of keys)."""

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Scalars of one step (an epoch)."""

    @abstractmethod
    def log_figure(self, path: Path, step: int) -> None:
        """A PNG picture of `step`, named by its file's stem."""

    @abstractmethod
    def log_model_folder(self, path: Path) -> None:
        """The final model: a folder (all its files) or one checkpoint file."""

    @abstractmethod
    def close(self, failed: bool = False) -> None:
        """End the run's record; `failed`: the training stopped on an error."""


class TensorBoardLogger(ExperimentLogger):
    """Events in run_dir/tensorboard/ (tensorboardX, without TensorFlow). A continued training
    purges the events of the epochs after its checkpoint, which it trains again."""

    name = "tensorboard"

    @classmethod
    def check(cls, run: TrackedRun) -> None:
        require("tensorboardX", "train")

    def __init__(self, run: TrackedRun) -> None:
        from tensorboardX import SummaryWriter

        self._step = run.start_epoch
        self.writer = SummaryWriter(
            str(run.run_dir / "tensorboard"), purge_step=run.start_epoch + 1
        )

    def log_params(self, recipe: Mapping[str, Any]) -> None:
        code = "".join(f"    {line}\n" for line in dump_config(recipe).splitlines())
        self.writer.add_text("recipe", code, self._step)  # indented: a code block in Markdown

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_figure(self, path: Path, step: int) -> None:
        from matplotlib.image import imread

        pixels = imread(path)[..., :3]  # (H, W, 3) in [0, 1], without the alpha channel
        self.writer.add_image(Path(path).stem, pixels, step, dataformats="HWC")
        self.writer.flush()

    def log_model_folder(self, path: Path) -> None:
        pass  # the model stays beside the events, in the run folder

    def close(self, failed: bool = False) -> None:
        self.writer.close()


class MlflowLogger(ExperimentLogger):
    """A run of an MLflow experiment, through `MlflowClient` (no global active run)."""

    name = "mlflow"

    @classmethod
    def check(cls, run: TrackedRun) -> None:
        require("mlflow", "mlflow")
        uri = cls._tracking_uri(run)
        if uri is None or uri.split(":", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES:
            require("sqlalchemy", "mlflow")
            require("alembic", "mlflow")

    @staticmethod
    def _tracking_uri(run: TrackedRun) -> str | None:
        """The store given by the recipe or the environment; None: the run folder's own."""
        return run.log["mlflow_tracking_uri"] or os.environ.get("MLFLOW_TRACKING_URI") or None

    def __init__(self, run: TrackedRun) -> None:
        from mlflow import MlflowClient

        given = self._tracking_uri(run)
        folder = run.run_dir.resolve() / "mlflow"
        if given is None:
            folder.mkdir(parents=True, exist_ok=True)
        uri = given or f"sqlite:///{folder / 'mlflow.db'}"
        experiment = run.log["mlflow_experiment"] or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        artifacts = None if given else (folder / "artifacts").as_uri()
        try:
            self.client = MlflowClient(tracking_uri=uri)
            self.run_id = self._continued_run(run, given) or self._new_run(
                run, experiment or DEFAULT_NAME, artifacts
            )
        except Exception as error:
            raise TrackerError(f"mlflow: cannot start a run in {uri}: {_one_line(error)}") from None
        run.record(self.name, {"tracking_uri": given, "run_id": self.run_id})
        logger.info("MLflow run %s in %s", self.run_id, uri)

    def _continued_run(self, run: TrackedRun, given: str | None) -> str | None:
        recorded = run.recorded(self.name)
        if recorded is None:
            return None
        run_id = recorded.get("run_id")
        if recorded.get("tracking_uri") != given:
            reason = f"it is in {recorded.get('tracking_uri') or 'the run folder'}'s store"
        else:
            try:
                self.client.get_run(run_id)
                self.client.update_run(run_id, status="RUNNING")
                logger.info("mlflow: continuing run %s", run_id)
                return run_id
            except Exception as error:
                reason = _one_line(error)
        logger.warning("mlflow: run %s is not continued (%s): a new run follows", run_id, reason)
        return None

    def _new_run(self, run: TrackedRun, experiment: str, artifacts: str | None) -> str:
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(experiment, artifact_location=artifacts)
        )
        tags = {"effvid.run_dir": str(run.run_dir.resolve())}
        return self.client.create_run(experiment_id, run_name=run.name, tags=tags).info.run_id

    def log_params(self, recipe: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = {key: _param_text(value) for key, value in flatten(recipe).items()}
        kept = self.client.get_run(self.run_id).data.params
        changed = sorted(key for key in params.keys() & kept.keys() if kept[key] != params[key])
        if changed:  # MLflow keeps a param's first value; config.yaml holds the new recipe
            logger.info("mlflow: params keep their first values: %s", ", ".join(changed))
        new = [Param(key, value) for key, value in params.items() if key not in kept]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 params a request
            self.client.log_batch(self.run_id, params=new[start : start + 100])
        self.client.log_text(self.run_id, dump_config(recipe), "config.yaml")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=rows)

    def log_figure(self, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path))  # the latest one under its name

    def log_model_folder(self, path: Path) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path="model")

    def close(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


class WandbLogger(ExperimentLogger):
    """A Weights & Biases run, its local files in run_dir/wandb/; online, offline
    (WANDB_MODE=offline: no login, `wandb sync` later) or disabled, as W&B's environment says."""

    name = "wandb"

    @classmethod
    def check(cls, run: TrackedRun) -> None:
        require("wandb", "wandb")

    def __init__(self, run: TrackedRun) -> None:
        import wandb

        project = run.log["wandb_project"] or os.environ.get("WANDB_PROJECT") or DEFAULT_NAME
        entity = run.log["wandb_entity"] or os.environ.get("WANDB_ENTITY") or None
        recorded = run.recorded(self.name)
        run_id = None
        if recorded is not None:
            if (recorded.get("project"), recorded.get("entity")) == (project, entity):
                run_id = recorded.get("run_id")
            else:
                logger.warning(
                    "wandb: run %s of project %s is not continued (the project is now %s): "
                    "a new run follows",
                    recorded.get("run_id"), recorded.get("project"), project,
                )  # fmt: skip
        try:
            self.run = wandb.init(
                project=project,
                entity=entity,
                name=run.name,
                id=run_id,
                resume="allow" if run_id else None,
                dir=str(run.run_dir),
                reinit="create_new",
            )
        except Exception as error:
            raise TrackerError(
                f"wandb: cannot start a run of project {project}: {_one_line(error)} (an online "
                "run needs `wandb login`; WANDB_MODE=offline keeps the run in the run folder)"
            ) from None
        run.record(self.name, {"run_id": self.run.id, "project": project, "entity": entity})
        verb = "continuing" if run_id else "started"
        logger.info("wandb: %s run %s of project %s in %s", verb, self.run.id, project, run.run_dir)

    def log_params(self, recipe: Mapping[str, Any]) -> None:
        self.run.config.update(dict(recipe), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_figure(self, path: Path, step: int) -> None:
        import wandb

        self.run.log({Path(path).stem: wandb.Image(str(path))}, step=step)

    def log_model_folder(self, path: Path) -> None:
        import wandb

        path = Path(path)
        artifact = wandb.Artifact(f"model-{self.run.id}", type="model")
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def close(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


# One class for each name of `recipe_schema.LOG_BACKENDS`.
BACKENDS: dict[str, type[ExperimentLogger]] = {
    cls.name: cls for cls in (TensorBoardLogger, MlflowLogger, WandbLogger)
}


def check_backends(run: TrackedRun) -> None:
    """MissingExtraError, naming the extra, unless every tracker of `run.log` can start: called
    before anything of a training is done."""
    for name in run.log["backends"]:
        BACKENDS[name].check(run)


class ExperimentLoggers(ExperimentLogger):
    """The trackers of one run, each given everything in turn. One that fails after it started
    is closed and dropped with a warning: the training goes on without it."""

    name = "trackers"

    def __init__(self, loggers: Iterable[ExperimentLogger]) -> None:
        self.loggers = list(loggers)

    @classmethod
    def check(cls, run: TrackedRun) -> None:
        check_backends(run)

    @classmethod
    def open(cls, run: TrackedRun, recipe: Mapping[str, Any]) -> "ExperimentLoggers":
        """Start every tracker `run.log` names (missing packages are refused before any starts)
        and give them the recipe."""
        check_backends(run)
        opened: list[ExperimentLogger] = []
        try:
            for name in run.log["backends"]:
                opened.append(BACKENDS[name](run))
        except BaseException:
            for started in opened:
                started.close(failed=True)
            raise
        loggers = cls(opened)
        loggers.log_params(recipe)
        return loggers

    def _each(self, what: str, call: Callable[[ExperimentLogger], None]) -> None:
        for tracker in list(self.loggers):
            try:
                call(tracker)
            except Exception as error:
                self.loggers.remove(tracker)
                logger.warning(
                    "%s: could not %s (%s); the training goes on without it",
                    tracker.name, what, _one_line(error),
                )  # fmt: skip
                if what != "close":
                    with contextlib.suppress(Exception):  # already reported: it failed once
                        tracker.close(failed=True)

    def log_params(self, recipe: Mapping[str, Any]) -> None:
        self._each("log the recipe", lambda tracker: tracker.log_params(recipe))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._each("log metrics", lambda tracker: tracker.log_metrics(metrics, step))

    def log_figure(self, path: Path, step: int) -> None:
        self._each(f"log {Path(path).name}", lambda tracker: tracker.log_figure(path, step))

    def log_model_folder(self, path: Path) -> None:
        self._each("log the model", lambda tracker: tracker.log_model_folder(path))

    def close(self, failed: bool = False) -> None:
        self._each("close", lambda tracker: tracker.close(failed))
        self.loggers = []


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
