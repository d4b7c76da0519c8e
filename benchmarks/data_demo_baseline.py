"""How learnable the demo dataset is: a plain 0.57 M-parameter 3-D CNN trained on CPU.

    python benchmarks/data_demo_baseline.py [--epochs 8] [--threads 1] [--frame-size 64]

Generates the demo dataset if needed (`load_demo_dataset`), trains with AdamW and a one-cycle
schedule, and after every epoch reports test top-1 on the clips as they are and played backwards.
A backwards clip of a class looks like its partner class (`DEMO_TIME_REVERSED`): a model that
learned the order of events scores near 0 on reversed clips and predicts the partner class instead.
The last lines are the test confusion matrix (rows: true class).
"""

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from effvid.data import DEMO_CLASSES, DEMO_TIME_REVERSED, load_demo_dataset


def conv_block(inputs: int, outputs: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(outputs),
        nn.ReLU(inplace=True),
    )


def small_3d_cnn(num_classes: int) -> nn.Module:
    """(B, 3, T, H, W) -> (B, num_classes); time is halved twice, space five times."""
    return nn.Sequential(
        conv_block(3, 16, (1, 2, 2)),
        conv_block(16, 32, (1, 2, 2)),
        conv_block(32, 64, (2, 2, 2)),
        conv_block(64, 96, (2, 2, 2)),
        conv_block(96, 128, (1, 2, 2)),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    )


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float, float, torch.Tensor]:
    """(top-1, top-1 on reversed clips, share of reversed clips called the partner class,
    confusion matrix)."""
    model.eval()
    partner = torch.tensor([DEMO_TIME_REVERSED[label] for label in range(len(DEMO_CLASSES))])
    confusion = torch.zeros(len(DEMO_CLASSES), len(DEMO_CLASSES), dtype=torch.long)
    correct = reversed_correct = reversed_partner = total = 0
    for clips, labels, _ in loader:
        predicted = model(clips).argmax(1)
        backwards = model(clips.flip(2)).argmax(1)
        correct += (predicted == labels).sum().item()
        reversed_correct += (backwards == labels).sum().item()
        reversed_partner += (backwards == partner[labels]).sum().item()
        total += len(labels)
        confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    model.train()
    return correct / total, reversed_correct / total, reversed_partner / total, confusion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frame-size", type=int, default=64)
    parser.add_argument("--root", help="demo dataset folder (default: the cache)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train, _, test = load_demo_dataset(args.root, frame_size=args.frame_size)
    print(f"dataset ready in {time.perf_counter() - start:.0f} s", flush=True)

    model = small_3d_cnn(len(train.classes))
    loader = DataLoader(train, batch_size=32, shuffle=True, num_workers=1, drop_last=True)
    test_loader = DataLoader(test, batch_size=64, num_workers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=args.epochs * len(loader), pct_start=0.15
    )
    training_time = 0.0
    for epoch in range(args.epochs):
        epoch_start = time.perf_counter()
        for clips, labels, _ in loader:
            loss = F.cross_entropy(model(clips), labels, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        training_time += time.perf_counter() - epoch_start
        top1, reversed_top1, partner, confusion = evaluate(model, test_loader)
        print(
            f"epoch {epoch + 1}: test top-1 {top1:.1%}, reversed clips {reversed_top1:.1%} "
            f"(called the partner class: {partner:.1%}); training {training_time:.0f} s",
            flush=True,
        )
    print(confusion)
    return 0


if __name__ == "__main__":
    sys.exit(main())
