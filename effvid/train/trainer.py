"""The training loop: one process per device (`torchrun`) or a single process, a run folder,
and resumption that continues exactly where a run stopped.

Run folder (`output.dir`), owned by one training at a time (an OS-level lock: a second one is
refused at once) and holding one run (`run_folder`: a training continues it only under the recipe
and classes it was trained with, up to what `MAY_CHANGE_ON_RESUME` declares):
    config.yaml         the resolved recipe
    classes.txt         class names, one per line
    train.log           the log lines
    metrics.jsonl       one JSON object per epoch (loss, lr, accuracies, seconds, and the columns
                        of `Trainer.epoch_metrics`)
    last.pth, best.pth  training checkpoints (written atomically; best by validation top-1)
    best_confusion.png  the confusion matrix of best.pth's validation
    model/              the model folder of best.pth (`effvid save-pretrained`), once training ends
    bad_videos_*.tsv    unreadable videos met, with the reason
    tensorboard/        TensorBoard events (the default tracker)
    mlflow/, wandb/     the local files of the other trackers `log.backends` may name, and
    trackers.json       the ids of their runs, which a continued training continues
                        (`effvid.train.loggers`)

The main process alone writes the folder and reports to the trackers (under torchrun too).

Extension points for a subclass: `objective` (what is back-propagated for a batch, from its
loss: e.g. a regulariser the model computed in that forward) and `epoch_metrics` (more columns
of an epoch's row, measured after its training pass).

Determinism: the random state of an epoch depends only on (seed, epoch, rank), and checkpoints
are taken at epoch ends, so a run resumed from its last checkpoint repeats the interrupted epoch
exactly as an uninterrupted run would have done it.
"""

import json
import logging
import math
import time
from collections.abc import Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from effvid.data import MixupCutmix, soft_target_cross_entropy
from effvid.data.progress import progress_bar
from effvid.distributed import DistributedContext, all_reduce_mean, barrier
from effvid.errors import EffvidError
from effvid.files import exclusive_lock
from effvid.models import create_model, get_model_card, load_checkpoint
from effvid.models.weights import CheckpointError, CheckpointMetadata
from effvid.train import recipe_data
from effvid.train.config import dump_config
from effvid.train.evaluate import VideoScores, collect_view_logits, gather_video_scores, summarize
from effvid.train.loggers import ExperimentLoggers, TrackedRun, check_backends
from effvid.train.model_folder import write_model_folder
from effvid.train.optim import build_optimizer, warmup_cosine
from effvid.train.plots import plot_confusion_matrix, plot_training_curves
from effvid.train.run_folder import check_classes, check_recipe, discard_run, recorded_run
from effvid.train.training_checkpoint import (
    TrainingCheckpoint,
    read_training_checkpoint,
    save_checkpoint,
)

logger = logging.getLogger("effvid.train")


def _autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """'auto': bf16 on GPUs that support it, nothing on CPU (where it does not pay off for
    these models); 'bf16' / 'fp16' / 'none' as asked."""
    if amp == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else None
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def seed_epoch(seed: int, epoch: int, rank: int) -> int:
    """The seed of one process in one epoch (also what its data loader draws from)."""
    value = (seed * 1_000_003 + epoch * 1009 + rank) % (2**31)
    torch.manual_seed(value)
    return value


def _loader(dataset, batch_size: int, sampler: Sampler, workers: int, seed: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed),
        drop_last=False,
    )


@dataclass
class RunState:
    """What a checkpoint records besides the weights and optimizer states."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_top1: float = -1.0
    best_epoch: int = 0  # the epoch best.pth holds (0: none yet)
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch


class Trainer:
    """Train `config['model']['name']` on `config['data']` into `config['output']['dir']`.

    `resume`: True continues from the run folder's last checkpoint if there is one (the
    default); a path continues from that checkpoint; False starts afresh, discarding the run
    folder's checkpoints and metrics. Continuing under another recipe or other classes is a
    RunFolderError (see `run_folder`). The trainer owns its run folder from construction until
    `fit` returns or fails (or `close` is called): another training of the same folder meanwhile
    gets OutputLockedError.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        context: DistributedContext,
        *,
        resume: bool | str | Path = True,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.context = context
        self.device = context.device
        self.progress = progress and context.is_main
        self.run_dir = Path(config["output"]["dir"])
        self.train_cfg = config["train"]
        self.loggers: ExperimentLoggers | None = None
        self._log_handler: logging.Handler | None = None
        self._ownership = ExitStack()
        try:
            self._set_up(resume)
        except BaseException:
            self._close(failed=True)
            raise

    # --- set-up -----------------------------------------------------------------------------

    def _set_up(self, resume: bool | str | Path) -> None:
        if self.context.is_main:  # a tracker's missing package, before anything is done
            check_backends(TrackedRun(self.run_dir, self.config["log"]))
            self.run_dir.mkdir(parents=True, exist_ok=True)  # the lock lives inside it
            self._ownership.enter_context(exclusive_lock(self.run_dir, "run folder"))
        self._continued = self._runs_continued(resume)
        config = self.config
        data = config["data"]
        if data["format"] == "demo":
            data = recipe_data.demo_data_section(data, progress=self.progress)
        self.data = data
        self.card = get_model_card(config["model"]["name"])
        self._build_data()
        torch.manual_seed(self.train_cfg["seed"])  # the same initial weights for the same seed
        self._build_model()
        self.state = RunState()
        self._restore(resume)
        self._open_logs(continues=resume is not False)

    def _runs_continued(self, resume: bool | str | Path) -> list[tuple[Path, list[str]]]:
        """The checkpoints of the runs this training continues or writes over (the run folder's
        own, the one given to resume from), each checked against the recipe before anything is
        written, with the class names each was trained on (checked once the data is read); with
        `resume` False, the folder's run is discarded instead."""
        if resume is False:
            if self.context.is_main and (removed := discard_run(self.run_dir)):
                logger.info("started afresh: removed %s", ", ".join(p.name for p in removed))
            return []
        given = Path(resume) if isinstance(resume, str | Path) else None
        sources = [recorded_run(self.run_dir), given]
        runs = []
        for source in dict.fromkeys(path for path in sources if path is not None):
            checkpoint = read_training_checkpoint(source, mmap=True)
            check_recipe(source, checkpoint, self.config)
            runs.append((source, list(checkpoint.metadata.class_names or [])))
        return runs

    def _build_data(self) -> None:
        train_videos = recipe_data.read_split(self.data, "train")
        self.class_names = list(train_videos.classes)
        for source, recorded in self._continued:
            check_classes(source, recorded, self.class_names)
        val_videos = recipe_data.read_split(self.data, "val", self.class_names)
        self.views = recipe_data.resolve_views(self.config["eval"], self.card)
        caches = [recipe_data.frame_cache(self.data, v, progress=self.progress)
                  for v in (train_videos, val_videos)]  # fmt: skip
        self.train_set = recipe_data.train_dataset(
            self.data, self.card, train_videos, self.run_dir / "bad_videos_train.tsv",
            cache=caches[0],
        )  # fmt: skip
        self.val_set = recipe_data.eval_dataset(
            self.data, self.card, val_videos, self.views, self.run_dir / "bad_videos_val.tsv",
            cache=caches[1],
        )  # fmt: skip
        world, rank = self.context.world_size, self.context.rank
        seed = self.train_cfg["seed"]
        self.train_sampler = DistributedSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed
        )
        self.val_sampler = DistributedSampler(
            self.val_set, num_replicas=world, rank=rank, shuffle=False
        )
        eval_batch = self.config["eval"]["batch_size"] or self.train_cfg["batch_size"]
        self.val_loader = _loader(
            self.val_set, eval_batch, self.val_sampler, self.data["workers"], seed
        )

    def _build_model(self) -> None:
        model_cfg = self.config["model"]
        model = create_model(
            model_cfg["name"], num_classes=len(self.class_names), **model_cfg["args"]
        )
        if model_cfg["checkpoint"]:
            report = load_checkpoint(model, model_cfg["checkpoint"], strict=False)
            logger.info("fine-tuning from %s", report)
        if self.train_cfg["sync_bn"] and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        self.ema = None
        if self.train_cfg["ema"]:
            self.ema = AveragedModel(
                self.model,
                multi_avg_fn=get_ema_multi_avg_fn(self.train_cfg["ema"]),
                use_buffers=True,
            )
        self.network = (
            DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.context.is_distributed
            else self.model
        )
        self.optimizer = build_optimizer(self.model, self.train_cfg)
        per_epoch = math.ceil(
            math.ceil(len(self.train_set) / self.context.world_size)
            / self.train_cfg["batch_size"]
            / self.train_cfg["accumulation"]
        )
        self.steps_per_epoch = per_epoch
        self.scheduler = warmup_cosine(
            self.optimizer,
            total_steps=per_epoch * self.train_cfg["epochs"],
            warmup_steps=round(per_epoch * self.train_cfg["warmup_epochs"]),
            warmup_start=self.train_cfg["warmup_start"],
            min_ratio=self.train_cfg["min_lr"] / self.train_cfg["lr"],
        )
        self.autocast_dtype = _autocast_dtype(self.train_cfg["amp"], self.device)
        use_scaler = self.autocast_dtype == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        mixing = self.train_cfg["mixup"] > 0 or self.train_cfg["cutmix"] > 0
        self.mixup = (
            MixupCutmix(
                num_classes=len(self.class_names),
                mixup_alpha=self.train_cfg["mixup"],
                cutmix_alpha=self.train_cfg["cutmix"],
                label_smoothing=self.train_cfg["label_smoothing"],
            )
            if mixing
            else None
        )

    def _restore(self, resume: bool | str | Path) -> None:
        path = None
        if isinstance(resume, str | Path):
            path = Path(resume)
        elif resume and (self.run_dir / "last.pth").exists():
            path = self.run_dir / "last.pth"
        if path is None:
            return
        checkpoint = read_training_checkpoint(path)  # checked by _runs_continued
        try:
            self.model.load_state_dict(checkpoint.model)
        except RuntimeError as error:  # recorded without its model: the weights say it
            first = str(error).splitlines()[1:2] or [str(error)]
            raise CheckpointError(
                f"{path} does not fit {self.config['model']['name']}: {first[0].strip()}"
            ) from None
        if self.ema is not None and checkpoint.ema is not None:
            self.ema.load_state_dict(checkpoint.ema)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.scheduler.load_state_dict(checkpoint.scheduler)
        self.scaler.load_state_dict(checkpoint.scaler)
        self.state = RunState(**checkpoint.state)
        if self.context.is_main:
            logger.info("resumed from %s after epoch %d", path, self.state.epoch)

    def _open_logs(self, continues: bool) -> None:
        """The run folder's records and the trackers (main process); `continues`: the training
        continues the folder's run, and so its tracker runs."""
        if not self.context.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.run_dir.glob(".*.tmp"):  # a checkpoint write a kill cut short
            leftover.unlink()
        # The checkpoint is the truth: the log holds each of its epochs once, whatever a kill
        # left behind after it.
        rows = "".join(json.dumps(row) + "\n" for row in self.state.history)
        (self.run_dir / "metrics.jsonl").write_text(rows)
        self._repair_best()
        if self.state.best_epoch == 0:  # a picture of no checkpoint here
            (self.run_dir / "best_confusion.png").unlink(missing_ok=True)
        (self.run_dir / "config.yaml").write_text(dump_config(self.config))
        (self.run_dir / "classes.txt").write_text("".join(f"{c}\n" for c in self.class_names))
        handler = logging.FileHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        effvid_logger = logging.getLogger("effvid")
        if effvid_logger.level == logging.NOTSET:  # not configured: the run log still gets INFO
            effvid_logger.setLevel(logging.INFO)
        effvid_logger.addHandler(handler)
        self._log_handler = handler
        run = TrackedRun(self.run_dir, self.config["log"], self.state.epoch, continues)
        self.loggers = ExperimentLoggers.open(run, self.config)

    # --- training ---------------------------------------------------------------------------

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim == 2:  # soft targets from mixup / cutmix
            return soft_target_cross_entropy(logits, targets)
        return F.cross_entropy(logits, targets, label_smoothing=self.train_cfg["label_smoothing"])

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        """What is back-propagated for a batch, given its loss (what `train_loss` logs),
        called right after the model's forward on it: the loss itself. A subclass may add terms,
        e.g. a regulariser the model computed in that forward."""
        return loss

    def epoch_metrics(self) -> dict[str, float]:
        """More columns of an epoch's row, measured after its training pass and before its
        validation (on the main process and the others alike): none here; for subclasses."""
        return {}

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        seed = seed_epoch(self.train_cfg["seed"], epoch, self.context.rank)
        self.train_sampler.set_epoch(epoch)
        loader = _loader(
            self.train_set,
            self.train_cfg["batch_size"],
            self.train_sampler,
            self.data["workers"],
            seed,
        )
        self.network.train()
        accumulation = self.train_cfg["accumulation"]
        total_loss = correct = seen = 0.0
        start = time.perf_counter()
        bar = progress_bar(len(loader), f"epoch {epoch + 1}", enabled=self.progress, unit="batch")
        self.optimizer.zero_grad(set_to_none=True)
        for index, (clips, labels, _) in enumerate(loader):
            clips = clips.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            targets = labels
            if self.mixup is not None:
                clips, targets = self.mixup(clips, labels)
            last_of_step = (index + 1) % accumulation == 0 or index + 1 == len(loader)
            sync = last_of_step or not self.context.is_distributed
            with nullcontext() if sync else self.network.no_sync(), self._autocast():
                logits = self.network(clips)
                loss = self._loss(logits.float(), targets)
                objective = self.objective(loss)  # train_loss logs the loss alone
            self.scaler.scale(objective / accumulation).backward()
            if last_of_step:
                self._optimizer_step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
            lr = self.optimizer.param_groups[0]["lr"]
            bar.set_postfix_str(f"loss {total_loss / seen:.3f} lr {lr:.2e}", refresh=False)
            bar.update()
        bar.close()
        return {
            "train_loss": all_reduce_mean(total_loss / max(seen, 1)),
            "train_top1": all_reduce_mean(100.0 * correct / max(seen, 1)),
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_seconds": time.perf_counter() - start,
        }

    def _optimizer_step(self) -> None:
        if self.train_cfg["clip_grad"]:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg["clip_grad"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.state.step += 1
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def evaluation_model(self) -> nn.Module:
        """The weights evaluated and kept as best: the EMA average when the recipe uses one."""
        return self.ema.module if self.ema is not None else self.model

    def evaluate(self):
        items = collect_view_logits(
            self.evaluation_model(), self.val_loader, self.device, self.autocast_dtype
        )
        return gather_video_scores(
            items, aggregate=self.config["eval"]["aggregate"], class_names=self.class_names
        )

    # --- bookkeeping ------------------------------------------------------------------------

    def _checkpoint(self) -> TrainingCheckpoint:
        model = self.config["model"]
        return TrainingCheckpoint(
            model=self.model.state_dict(),
            epoch=self.state.epoch,
            state=vars(self.state),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            config=dict(self.config),
            metadata=CheckpointMetadata(
                class_names=self.class_names,
                preprocessing=recipe_data.recipe_preprocessing(self.data, self.card).as_dict(),
                model_name=model["name"],
                model_args=dict(model["args"]),
            ),
            ema=self.ema.state_dict() if self.ema is not None else None,
        )

    def _best_checkpoint(self, checkpoint: TrainingCheckpoint) -> TrainingCheckpoint:
        return replace(checkpoint, model=self.evaluation_model().state_dict())

    def _repair_best(self) -> None:
        """After a resume: best.pth must hold epoch `best_epoch`. It can be rebuilt when that is
        the epoch just restored; otherwise the best is re-established by the next validation."""
        if self.state.best_epoch == 0:
            return
        path = self.run_dir / "best.pth"
        try:
            held = read_training_checkpoint(path, mmap=True).epoch if path.exists() else None
        except CheckpointError:
            held = None
        if held == self.state.best_epoch:
            return
        if self.state.best_epoch == self.state.epoch:
            save_checkpoint(self._best_checkpoint(self._checkpoint()), path)
            logger.info("best.pth rewritten from last.pth (epoch %d)", self.state.epoch)
            return
        logger.warning(
            "best.pth does not hold the best epoch (%d) and cannot be rebuilt; the next "
            "validation writes a new one",
            self.state.best_epoch,
        )
        self.state.best_top1, self.state.best_epoch = -1.0, 0

    def _record_epoch(self, row: dict[str, float], is_best: bool) -> None:
        """Checkpoints first (best, then last: a kill between them leaves a best.pth ahead of
        last.pth, which the resumed run rewrites identically), then the logs."""
        self.state.history.append(row)
        checkpoint = self._checkpoint()
        if is_best:
            save_checkpoint(self._best_checkpoint(checkpoint), self.run_dir / "best.pth")
        save_checkpoint(checkpoint, self.run_dir / "last.pth")
        with (self.run_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        self.loggers.log_metrics({k: v for k, v in row.items() if k != "epoch"}, row["epoch"])
        keep = self.config["output"]["keep_every"]
        if keep and row["epoch"] % keep == 0:
            save_checkpoint(checkpoint, self.run_dir / f"epoch_{row['epoch']}.pth")
        plot_training_curves(self.state.history, self.run_dir / "training_curves.png")
        message = " ".join(f"{k} {v:.4g}" for k, v in row.items())
        logger.info("%s%s", message, " (best)" if is_best else "")

    def _record_best_validation(self, results: VideoScores, epoch: int) -> None:
        """The confusion matrix of the validation best.pth now holds, as best_confusion.png and
        to the trackers (after the epoch's records: it describes a checkpoint written)."""
        metrics = results.metrics()
        title = f"epoch {epoch}: top-1 {metrics['top1']:.1f}% on {metrics['videos']} videos"
        path = self.run_dir / "best_confusion.png"
        plot_confusion_matrix(results.confusion(), self.class_names, path, title=title)
        self.loggers.log_figure(path, epoch)

    def _write_model_folder(self) -> Path | None:
        """The run's model folder, run_dir/model (`effvid save-pretrained` of the run: the
        weights of best.pth, config.json, a model card), rewritten when training ends; None,
        with a warning, when it cannot be written (the checkpoints are kept all the same)."""
        try:
            return write_model_folder(self.run_dir, self.run_dir / "model", overwrite=True)
        except EffvidError as error:
            logger.warning("no model folder written: %s", error)
            return None

    def fit(self) -> list[dict[str, float]]:
        """Train the remaining epochs, then write the model folder and give it to the trackers;
        returns the per-epoch history."""
        failed = True
        try:
            self._fit()
            if self.context.is_main and (folder := self._write_model_folder()) is not None:
                self.loggers.log_model_folder(folder)
            failed = False
        finally:
            self._close(failed)
        return self.state.history

    def _fit(self) -> None:
        epochs, every = self.train_cfg["epochs"], self.config["eval"]["every"]
        for epoch in range(self.state.epoch, epochs):
            row = {"epoch": epoch + 1, **self.train_one_epoch(epoch), **self.epoch_metrics()}
            results = None
            if (epoch + 1) % every == 0 or epoch + 1 == epochs:
                start = time.perf_counter()
                results = self.evaluate()
                metrics = results.metrics()
                row.update({f"val_{k}": v for k, v in metrics.items() if k in ("top1", "top5")})
                row["val_seconds"] = time.perf_counter() - start
                if self.context.is_main:
                    logger.info("epoch %d validation: %s", epoch + 1, summarize(metrics))
            self.state.epoch = epoch + 1
            is_best = row.get("val_top1", -1.0) > self.state.best_top1
            if is_best:
                self.state.best_top1, self.state.best_epoch = row["val_top1"], epoch + 1
            if self.context.is_main:
                self._record_epoch(row, is_best)
                if is_best and results is not None:
                    self._record_best_validation(results, epoch + 1)
            barrier()

    def close(self) -> None:
        """Close the trackers and the log and give the run folder up (`fit` does it when it
        ends)."""
        self._close(failed=False)

    def _close(self, failed: bool) -> None:
        if self.loggers is not None:
            self.loggers.close(failed)
            self.loggers = None
        if self._log_handler is not None:
            logging.getLogger("effvid").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        self._ownership.close()
