"""Class names and preprocessing of the official checkpoints effvid reads (DualFormer's
Kinetics-400 checkpoints, the image Mobile-Former's ImageNet-1k ones), which carry none
themselves.

An official checkpoint is a bare state dict (in an mmaction or timm container): it holds
weights only. `official_metadata` supplies what `effvid save-pretrained` writes beside them, so
that the converted model labels its outputs with the dataset's class names and reads its input
exactly as the official test pipeline did:

    DualFormer (sail-sg/dualformer 058c10c, configs/recognition/dualformer/*_kinetics400_1k.py,
    test_pipeline): 32 frames every 2, short side 224, centre crop 224, ImageNet mean/std;
    the Kinetics-400 classes of mmaction2's label_map_k400.txt (also the repository's own
    demo/label_map_k400.txt).
    Mobile-Former (AAboys/MobileFormer b19a2a7, timm evaluation): one image, short side 256,
    centre crop 224 (crop_pct 0.875), bilinear, ImageNet mean/std; the ImageNet-1k classes.

The class names are package data in `effvid/models/class_names/` (one name per line, in label
order; the README there names the sources and the two ImageNet names made unique).
"""

from dataclasses import dataclass
from pathlib import Path

from effvid.errors import InputError
from effvid.models.constants import IMAGENET_MEAN, IMAGENET_STD
from effvid.models.registry import UnknownModelError, get_model_card
from effvid.models.weights import CheckpointMetadata

CLASS_NAMES_DIR = Path(__file__).resolve().parent / "class_names"
DATASETS = ("kinetics400", "imagenet1k")


@dataclass(frozen=True)
class OfficialRelease:
    """The released checkpoints of one model family: the dataset their classifier was trained on
    and the official test input (`num_frames` frames every `sampling_rate`; 1 frame for an image
    model), as fields of effvid's `Preprocessing`."""

    family: str
    dataset: str  # a file of CLASS_NAMES_DIR, without '.txt'
    num_classes: int
    num_frames: int
    sampling_rate: int
    short_side: int
    crop_size: int
    source: str
    parity_test: str

    def preprocessing(self) -> dict:
        """The official test input as `Preprocessing.as_dict` writes it."""
        return {
            "num_frames": self.num_frames,
            "sampling_rate": self.sampling_rate,
            "crop_size": self.crop_size,
            "short_side": self.short_side,
            "mean": list(IMAGENET_MEAN),  # DualFormer: [123.675, 116.28, 103.53] / 255
            "std": list(IMAGENET_STD),  # DualFormer: [58.395, 57.12, 57.375] / 255
            "sampling": "dense",
        }


RELEASES = (
    OfficialRelease(
        family="dualformer",
        dataset="kinetics400",
        num_classes=400,
        num_frames=32,
        sampling_rate=2,
        short_side=224,
        crop_size=224,
        source=(
            "the official DualFormer Kinetics-400 checkpoints (github.com/sail-sg/dualformer, "
            "mmaction layout); test pipeline of its configs: 32 frames every 2, short side 224, "
            "centre crop 224, reported at 4 clips x 1 crop, mean of softmax over views"
        ),
        parity_test="tests/models/test_dualformer.py",
    ),
    OfficialRelease(
        family="mobile_former",
        dataset="imagenet1k",
        num_classes=1000,
        num_frames=1,
        sampling_rate=1,
        short_side=256,
        crop_size=224,
        source=(
            "the Mobile-Former authors' ImageNet-1k checkpoints (github.com/AAboys/MobileFormer); "
            "evaluation: short side 256, centre crop 224, bilinear"
        ),
        parity_test="tests/models/test_mobile_former_parity.py",
    ),
)


def dataset_class_names(dataset: str) -> list[str]:
    """The class names of `dataset` ('kinetics400' or 'imagenet1k') in label order."""
    if dataset not in DATASETS:
        raise InputError(f"no class names for {dataset!r}; known: {', '.join(DATASETS)}")
    text = (CLASS_NAMES_DIR / f"{dataset}.txt").read_text(encoding="utf-8")
    return text.splitlines()


def official_release(model_name: str, num_classes: int) -> OfficialRelease | None:
    """The official release of registered model `model_name` with a `num_classes`-way
    classifier, or None (an unregistered name, another family, another class count)."""
    try:
        family = get_model_card(model_name).family
    except UnknownModelError:
        return None
    return next((r for r in RELEASES if r.family == family and r.num_classes == num_classes), None)


def official_metadata(model_name: str, num_classes: int) -> CheckpointMetadata | None:
    """The metadata of an official checkpoint of registered model `model_name` whose classifier
    has `num_classes` outputs, or None if effvid knows no official checkpoint of that shape.

    The model's constructor arguments are its registered defaults (`model_args` empty): the
    official checkpoints are the registered variants."""
    release = official_release(model_name, num_classes)
    if release is None:
        return None
    return CheckpointMetadata(
        class_names=dataset_class_names(release.dataset),
        preprocessing=release.preprocessing(),
        model_name=model_name,
    )


def official_card_notes(model_name: str, num_classes: int) -> str | None:
    """A paragraph for the model card of a converted official checkpoint: where the weights
    come from, the dataset of its classes and the test that checks effvid reproduces the
    official outputs; None where `official_metadata` is None."""
    release = official_release(model_name, num_classes)
    if release is None:
        return None
    names = f"effvid/models/class_names/{release.dataset}.txt"
    return (
        f"Weights: {release.source}. Classes: the {release.num_classes} classes of "
        f"{names}, in the official label order. effvid reproduces the official model's "
        f"outputs ({release.parity_test}, against tensors captured from the official code)."
    )
