"""Parity with the original codes, as one table: effvid's outputs on the reference inputs.

    python benchmarks/parity.py [--shared ../shared]

The reference data (`<shared>/reference/*`, each folder's README says how it was generated) holds
inputs, weights and the outputs of the unmodified original code: the Mobile-Former authors' code
(AAboys/MobileFormer), the official DualFormer (sail-sg/dualformer) and PyTorchVideo's X3D. For
each set this loads the weights into the effvid model through `effvid.load_checkpoint` and prints
the largest absolute difference of the outputs, next to the tolerance the tests enforce
(tests/models/test_mobile_former_parity.py, test_dualformer.py, test_x3d.py; those also compare
every captured intermediate tensor, state-dict keys, shapes and parameter counts).
"""

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

import effvid
from effvid.models.dualformer import DualFormer


def _mobile_former(folder: Path, name: str, variant: str) -> tuple[torch.nn.Module, dict]:
    model = effvid.create_model(f"mobileformer_{variant}")
    effvid.load_checkpoint(model, folder / f"{name}_state_dict.safetensors", strict=True)
    return model, load_file(folder / f"{name}_io.safetensors")


def _dualformer(folder: Path) -> tuple[torch.nn.Module, dict]:
    config = json.loads((folder / "tiny_config.json").read_text())
    args = {k: v for k, v in config["backbone_args"].items() if k != "num_classes"}
    model = DualFormer(num_classes=config["head_args"]["num_classes"], **args)
    effvid.load_checkpoint(model, folder / "tiny_state_dict.safetensors")
    return model, load_file(folder / "tiny_io.safetensors")


def _x3d(folder: Path) -> tuple[torch.nn.Module, dict]:
    model = effvid.create_model("x3d_xs", num_classes=10)
    effvid.load_checkpoint(model, folder / "x3d_xs_state_dict.safetensors")
    return torch.nn.Sequential(model, torch.nn.Softmax(dim=-1)), load_file(
        folder / "x3d_xs_io.safetensors"
    )  # the hub model ends with a softmax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared")
    reference = parser.parse_args().shared / "reference"
    sets = [
        ("Mobile-Former 52M (authors' code)", "logits", 1e-6,
         lambda: _mobile_former(reference / "mobileformer", "mf52m", "52m")),
        ("Mobile-Former 26M, stress weights", "logits", 1e-4,
         lambda: _mobile_former(reference / "mobileformer", "mf26m_stress", "26m")),
        ("DualFormer, reduced official config", "logits", 5e-5,
         lambda: _dualformer(reference / "dualformer")),
        ("X3D-XS (PyTorchVideo hub)", "softmax", 1e-5, lambda: _x3d(reference / "x3d")),
    ]  # fmt: skip
    print("| reference set | compared | max abs difference | test tolerance |")
    print("|---|---|---|---|")
    for title, what, tolerance, load in sets:
        model, tensors = load()
        with torch.no_grad():
            difference = (model.eval()(tensors["input"]) - tensors["logits"]).abs().max()
        print(f"| {title} | {what} | {difference.item():.1e} | {tolerance:.0e} |")


if __name__ == "__main__":
    main()
