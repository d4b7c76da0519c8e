"""The recipe schema: every key of a training recipe with its type, its allowed range and its
default, in one declaration (pydantic). A recipe is checked against it completely when it is
loaded, so that no bad value survives to fail in the middle of a run.

Six sections: `model`, `data`, `train`, `eval`, `output`, `log`. Types are strict:
`train.epochs=true` or `train.lr=abc` are refused, an integer is accepted where a number is
expected.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from effvid.data.demo_data import TASKS as DEMO_TASKS

PositiveInt = Annotated[int, Field(ge=1)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Pair = Annotated[list[Number], Field(min_length=2, max_length=2)]
Rgb = Annotated[list[Number], Field(min_length=3, max_length=3)]

LOG_BACKENDS = ("tensorboard", "mlflow", "wandb")  # effvid.train.loggers implements each
DATA_FORMATS = ("list", "kinetics", "ssv2", "ucf101", "hmdb51", "folder", "demo")
DATA_PATHS = ("train", "val", "test", "root", "classes")
# The path keys a format does not read: one of them given is an error, never silently ignored.
UNREAD_PATHS = {"demo": DATA_PATHS, "folder": ("root",)}
MIN_CROP = 32  # every model downsamples by 32


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class ModelSection(_Section):
    name: str = Field("vmf_xxs", description="a registered model (effvid models)")
    args: dict[str, Any] = Field(
        default_factory=dict, description="constructor overrides, e.g. {drop_path_rate: 0.1}"
    )
    checkpoint: str | None = Field(
        None, description="weights to start from (fine-tuning); the head is replaced if needed"
    )


class RandAugmentSection(_Section):
    num_ops: Annotated[int, Field(ge=0, le=10)] = 2
    magnitude: Annotated[int, Field(ge=0, le=30)] = 9


class DataSection(_Section):
    format: Literal[DATA_FORMATS] = Field(
        "demo", description="annotation format; demo = the built-in dataset"
    )
    train: str | None = Field(None, description="annotation file (or folder tree), training")
    val: str | None = Field(None, description="annotation file of the evaluation split")
    test: str | None = Field(None, description="annotation file of a held-out test split")
    root: str | None = Field(None, description="folder the annotation's video paths are in")
    classes: str | None = Field(None, description="classes file, where the format needs one")
    split: Literal[1, 2, 3] = Field(1, description="UCF101 / HMDB51 split number")
    num_frames: PositiveInt = 8
    sampling: Literal["dense", "segment"] = Field(
        "dense", description="dense (num_frames x sampling_rate) | segment (TSN)"
    )
    sampling_rate: PositiveInt = 8
    crop_size: Annotated[int, Field(ge=MIN_CROP)] = 160
    short_side: Annotated[int, Field(ge=MIN_CROP)] = Field(
        160, description="evaluation resize of the short side (>= crop_size)"
    )
    scale_jitter: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = Field(
        None, description="training short-side range [min, max]; None: random-resized-crop"
    )
    crop_area: Pair = Field(
        default_factory=lambda: [0.08, 1.0],
        description="random-resized-crop area range (fraction of the frame)",
    )
    crop_aspect: Pair = Field(
        default_factory=lambda: [0.75, 1.3333],
        description="random-resized-crop aspect-ratio range",
    )
    flip: bool = Field(True, description="horizontal flips; off for direction-sensitive data")
    randaugment: RandAugmentSection | None = Field(None, description="{num_ops, magnitude}")
    color_jitter: Fraction = Field(0.0, description="brightness/contrast/saturation, 0 = off")
    mean: Rgb | None = Field(None, description="normalisation; None: the model card's")
    std: Rgb | None = None
    workers: Annotated[int, Field(ge=0)] = Field(2, description="data-loading processes")
    frame_cache: bool = Field(
        False, description="decode each split once into a memory-mapped cache (small videos)"
    )
    max_bad_fraction: Fraction = Field(
        0.05, description="abort when more of the videos are unreadable or missing"
    )
    demo_task: str = Field(
        "local",
        description="the built-in dataset's task (data.format = demo): local, or one registered "
        "with effvid.data.demo_data.register_demo_task",
    )
    demo_videos: Annotated[int, Field(ge=30)] | None = Field(
        None, description="size of the built-in demo dataset (data.format = demo)"
    )

    @field_validator("demo_task")
    @classmethod
    def _registered_task(cls, task: str) -> str:
        if task not in DEMO_TASKS:
            raise ValueError(
                f"data.demo_task {task!r} is not a registered demo task "
                f"(registered: {', '.join(DEMO_TASKS)})"
            )
        return task

    @model_validator(mode="after")
    def _consistent(self) -> "DataSection":
        unread = [key for key in UNREAD_PATHS.get(self.format, ()) if getattr(self, key)]
        if unread and self.format == "demo":
            formats = ", ".join(f for f in DATA_FORMATS if f != "demo")
            raise ValueError(
                f"data.{unread[0]} is given, but data.format is 'demo' (the built-in data, which "
                f"reads no path): set data.format to the format of your annotations ({formats})"
            )
        if unread:
            raise ValueError(
                f"data.{unread[0]} is not read by data.format '{self.format}' (its class folders "
                "are data.train, data.val and data.test themselves): remove it, or set "
                "data.format to a format that reads it"
            )
        if self.crop_size > self.short_side:
            raise ValueError(
                f"data.crop_size ({self.crop_size}) must not exceed data.short_side "
                f"({self.short_side})"
            )
        low, high = self.crop_area
        if not 0 < low <= high <= 1:
            raise ValueError(f"data.crop_area must be 0 < min <= max <= 1, got {self.crop_area}")
        low, high = self.crop_aspect
        if not 0 < low <= high:
            raise ValueError(f"data.crop_aspect must be 0 < min <= max, got {self.crop_aspect}")
        if self.scale_jitter is not None and self.scale_jitter[0] > self.scale_jitter[1]:
            raise ValueError(f"data.scale_jitter must be [min, max], got {self.scale_jitter}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"data.std must be positive, got {self.std}")
        return self


class TrainSection(_Section):
    epochs: PositiveInt = 10
    batch_size: PositiveInt = Field(16, description="per process")
    accumulation: PositiveInt = Field(1, description="optimizer step every N batches")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = Field(
        1e-3, description="for the total batch batch_size x processes x accumulation"
    )
    weight_decay: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.05
    no_decay: list[Literal["norm", "bias", "listed"]] = Field(
        default_factory=lambda: ["norm", "bias", "listed"],
        description="kept free of weight decay: norm weights, biases, and what the model lists "
        "in no_weight_decay() (VMF: the global tokens; DualFormer: its positional convs)",
    )
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [0.9, 0.999]
    )
    momentum: Fraction = 0.9
    warmup_epochs: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 1.0
    warmup_start: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.01, description="warm-up starts at lr x this"
    )
    min_lr: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 1e-5
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    mixup: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(
        0.0, description="mixup alpha, 0 = off"
    )
    cutmix: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(
        0.0, description="cutmix alpha, 0 = off"
    )
    clip_grad: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="max gradient norm"
    )
    ema: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        None, description="EMA decay of the weights, e.g. 0.999; None = off"
    )
    amp: Literal["auto", "none", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on GPUs that have it, else none"
    )
    sync_bn: bool = Field(False, description="SyncBatchNorm across GPUs (never on CPU)")
    seed: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> "TrainSection":
        if self.warmup_epochs > self.epochs:
            raise ValueError(
                f"train.warmup_epochs ({self.warmup_epochs}) must not exceed train.epochs "
                f"({self.epochs})"
            )
        if self.min_lr > self.lr:
            raise ValueError(f"train.min_lr ({self.min_lr}) must not exceed train.lr ({self.lr})")
        return self


class EvalSection(_Section):
    clips: PositiveInt | None = Field(None, description="temporal views; None: the card's")
    crops: Literal[1, 3, 10] | None = Field(None, description="spatial views; None: the card's")
    aggregate: Literal["prob", "logits"] = Field(
        "prob", description="prob (mean of softmax) | logits (mean of logits)"
    )
    every: PositiveInt = Field(1, description="evaluate every N epochs (and after the last)")
    batch_size: PositiveInt | None = Field(None, description="views per batch; None: train's")


class OutputSection(_Section):
    dir: str = "runs/default"
    keep_every: Annotated[int, Field(ge=0)] = Field(
        0, description="also keep epoch_N.pth every N epochs, 0 = only last and best"
    )


class LogSection(_Section):
    """Where a run is tracked besides its run folder (`effvid.train.loggers`). A key left at
    None takes the tracker's environment variable, then the default it names."""

    backends: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description=f"experiment trackers, any of {', '.join(LOG_BACKENDS)} (or none: [])",
    )
    run_name: str | None = Field(
        None, description="the run's name in MLflow and W&B; None: the run folder's name"
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="None: MLFLOW_TRACKING_URI, else a SQLite store in the run folder's mlflow/",
    )
    mlflow_experiment: str | None = Field(
        None, description="None: MLFLOW_EXPERIMENT_NAME, else 'effvid'"
    )
    wandb_project: str | None = Field(None, description="None: WANDB_PROJECT, else 'effvid'")
    wandb_entity: str | None = Field(
        None, description="None: WANDB_ENTITY, else the W&B account's default entity"
    )

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, backends: list[str]) -> list[str]:
        for index, name in enumerate(backends):
            if name not in LOG_BACKENDS:
                raise ValueError(
                    f"log.backends: unknown backend {name!r} (known: {', '.join(LOG_BACKENDS)})"
                )
            if name in backends[:index]:
                raise ValueError(f"log.backends names {name!r} twice")
        return backends


# What may differ when a run continues (from its folder's last.pth, or with --resume): how long it
# trains, how often and in what batches it is evaluated, how its data is loaded, what else it
# keeps and where, and which trackers follow it. Anything else changes what the weights learn,
# and is refused.
MAY_CHANGE_ON_RESUME = (
    "train.epochs",
    "eval.every",
    "eval.batch_size",
    "data.workers",
    "data.frame_cache",
    "data.test",
    "output.dir",
    "output.keep_every",
    *(f"log.{key}" for key in LogSection.model_fields),
)


class Recipe(_Section):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    output: OutputSection = Field(default_factory=OutputSection)
    log: LogSection = Field(default_factory=LogSection)
