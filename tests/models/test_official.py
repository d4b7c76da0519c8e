"""The metadata of official checkpoints: the class-name files shipped with effvid, and what
`official_metadata` gives each family (the names and the official test preprocessing)."""

import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch

import effvid
from effvid.data.annotations.list_file import read_classes_file
from effvid.data.preprocessing import Preprocessing
from effvid.errors import InputError
from effvid.models.official import (
    CLASS_NAMES_DIR,
    DATASETS,
    RELEASES,
    dataset_class_names,
    official_card_notes,
    official_metadata,
)
from tests.data.videos import write_indexed_video

ROOT = Path(__file__).resolve().parents[2]

# (index, name) pairs read off the sources (see effvid/models/class_names/README.md)
KINETICS400_NAMES = [
    (0, "abseiling"),
    (1, "air drumming"),
    (5, "archery"),
    (161, "hurling (sport)"),
    (259, "punching person (boxing)"),
    (398, "yoga"),
    (399, "zumba"),
]
IMAGENET1K_NAMES = [
    (0, "tench"),
    (1, "goldfish"),
    (134, "crane bird"),  # n02012849; its first lemma 'crane' also names class 517
    (207, "golden retriever"),
    (517, "crane"),  # n03126707
    (638, "maillot"),  # n03710637
    (639, "maillot tank suit"),  # n03710721; its first lemma 'maillot' also names class 638
    (999, "toilet tissue"),
]


@pytest.mark.parametrize(
    ("dataset", "count", "spots"),
    [("kinetics400", 400, KINETICS400_NAMES), ("imagenet1k", 1000, IMAGENET1K_NAMES)],
)
def test_class_names_are_the_standard_lists_in_label_order(dataset, count, spots):
    names = dataset_class_names(dataset)
    assert len(names) == count
    assert len(set(names)) == count
    assert all(name and name == name.strip() for name in names)
    assert [(index, names[index]) for index, _ in spots] == spots


@pytest.mark.parametrize("dataset", DATASETS)
def test_class_name_files_are_valid_classes_files(dataset):
    path = CLASS_NAMES_DIR / f"{dataset}.txt"
    assert read_classes_file(path) == dataset_class_names(dataset)


def test_a_wheel_carries_every_class_name_file():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    patterns = package_data["effvid.models.class_names"]
    files = [path.name for path in CLASS_NAMES_DIR.glob("*.txt")]
    assert sorted(files) == sorted(f"{dataset}.txt" for dataset in DATASETS)
    assert all(any(fnmatch.fnmatch(name, p) for p in patterns) for name in files)


def test_unknown_dataset_is_refused():
    with pytest.raises(InputError, match="kinetics400, imagenet1k"):
        dataset_class_names("kinetics700")


@pytest.mark.parametrize("name", effvid.list_models("dualformer_*"))
def test_dualformer_kinetics400_checkpoints_get_kinetics_names_and_the_official_test_input(name):
    metadata = official_metadata(name, 400)
    assert metadata.model_name == name and metadata.model_args == {}
    assert metadata.class_names == dataset_class_names("kinetics400")
    preprocessing = Preprocessing.from_dict(metadata.preprocessing)
    assert preprocessing.as_dict() == metadata.preprocessing
    assert (preprocessing.num_frames, preprocessing.sampling_rate) == (32, 2)
    assert (preprocessing.short_side, preprocessing.crop_size) == (224, 224)
    assert preprocessing.sampling == "dense"
    # the official Normalize: mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375] (0-255)
    assert [255 * m for m in preprocessing.mean] == pytest.approx([123.675, 116.28, 103.53])
    assert [255 * s for s in preprocessing.std] == pytest.approx([58.395, 57.12, 57.375])


@pytest.mark.parametrize("name", effvid.list_models("mobileformer_*"))
def test_image_mobile_former_checkpoints_get_imagenet_names_and_the_authors_eval_input(name):
    metadata = official_metadata(name, 1000)
    assert metadata.model_name == name
    assert metadata.class_names == dataset_class_names("imagenet1k")
    preprocessing = Preprocessing.from_dict(metadata.preprocessing)
    assert (preprocessing.num_frames, preprocessing.crop_size) == (1, 224)
    assert preprocessing.short_side == 256  # resize 256, centre crop 224 (crop_pct 0.875)
    assert preprocessing.mean == (0.485, 0.456, 0.406)
    assert preprocessing.std == (0.229, 0.224, 0.225)


@pytest.mark.parametrize(
    ("name", "num_classes"),
    [
        ("dualformer_t", 600),  # Kinetics-600: no class names shipped
        ("dualformer_s", 1000),
        ("mobileformer_52m", 400),
        ("vmf_xs", 400),  # effvid's own models have no official checkpoint
        ("x3d_s", 400),
        ("no_such_model", 400),
    ],
)
def test_other_checkpoints_have_no_official_metadata(name, num_classes):
    assert official_metadata(name, num_classes) is None
    assert official_card_notes(name, num_classes) is None


@pytest.mark.parametrize(
    ("name", "num_classes", "words"),
    [
        ("dualformer_b", 400, ("sail-sg/dualformer", "kinetics400.txt", "test_dualformer.py")),
        (
            "mobileformer_26m",
            1000,
            ("AAboys/MobileFormer", "imagenet1k.txt", "test_mobile_former_parity.py"),
        ),
    ],
)
def test_card_notes_name_the_source_the_classes_and_the_parity_test(name, num_classes, words):
    notes = official_card_notes(name, num_classes)
    assert all(word in notes for word in words)


@pytest.mark.parametrize("release", RELEASES, ids=lambda release: release.family)
def test_the_parity_test_a_card_names_exists(release):
    assert (ROOT / release.parity_test).is_file()


@pytest.mark.slow
@pytest.mark.subprocess
def test_an_official_dualformer_checkpoint_becomes_a_folder_that_predicts_kinetics_labels(
    tmp_path,
):
    """`effvid save-pretrained` on a checkpoint as mmaction saves it (weights under
    'state_dict', no class names), then `effvid predict` with the folder, as a user runs them."""
    torch.manual_seed(0)
    state = effvid.create_model("dualformer_t").state_dict()
    index, name = KINETICS400_NAMES[3]  # a class in the middle: an off-by-one shows
    state["cls_head.fc_cls.bias"][index] = 50.0  # the top class of any clip
    official = tmp_path / "dualformer_tiny_k400.pth"
    torch.save({"meta": {"epoch": 30, "mmcv_version": "1.3.8"}, "state_dict": state}, official)
    folder, video = tmp_path / "dualformer_t_k400", write_indexed_video(tmp_path / "v.mp4", 72)

    def effvid_command(*args: object) -> str:
        command = [sys.executable, "-m", "effvid.cli", *map(str, args)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    effvid_command("save-pretrained", official, folder, "--model", "dualformer_t")
    config = json.loads((folder / "config.json").read_text())
    assert config["class_names"] == dataset_class_names("kinetics400")
    assert config["preprocessing"] == official_metadata("dualformer_t", 400).preprocessing
    card = (folder / "README.md").read_text()
    assert "github.com/sail-sg/dualformer" in card and "kinetics400.txt" in card
    assert f"effvid predict VIDEO --checkpoint {folder}" in card
    records = json.loads(
        effvid_command("predict", video, "--checkpoint", folder, "--clips", "1", "--json")
    )
    top = records[0]["top"]
    assert top[0]["label"] == name and top[0]["score"] > 0.99
    assert {entry["label"] for entry in top} <= set(dataset_class_names("kinetics400"))


@pytest.mark.parametrize(
    ("name", "vmf"), [("mobileformer_26m", None), ("mobileformer_52m", "vmf_xxs")]
)
def test_an_official_mobile_former_checkpoint_becomes_a_folder_with_imagenet_names(
    tmp_path, name, vmf
):
    """The authors' checkpoints are timm training checkpoints: weights under 'state_dict'."""
    from effvid.cli import main

    state = effvid.create_model(name).state_dict()
    official = tmp_path / f"{name}.pth.tar"
    torch.save({"epoch": 450, "state_dict": state}, official)
    folder = tmp_path / f"{name}_in1k"
    assert main(["save-pretrained", str(official), str(folder), "--model", name]) == 0
    model = effvid.create_model(str(folder), pretrained=True)
    assert model.class_names == dataset_class_names("imagenet1k")
    assert model.preprocessing == official_metadata(name, 1000).preprocessing
    card = (folder / "README.md").read_text()
    assert official_card_notes(name, 1000) in card
    assert "github.com/AAboys/MobileFormer" in card and "imagenet1k.txt" in card
    assert "does not name its model" not in card
    # an image model: the card shows what runs it, not the video commands
    assert "effvid predict" not in card
    assert f'effvid.create_model("{folder}", pretrained=True)' in card
    assert (f'effvid.create_model("{vmf}")' in card) == (vmf is not None)
