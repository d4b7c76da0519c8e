"""Does an arm of the study learn with a longer budget? One arm, task and learning rate of
`study.py`, trained for more epochs with everything else as in the study (seed 0),
validated every epoch; the curve goes to `--out`/<task>/<arm>/lr<lr>_seed0/metrics.jsonl.

    python research/vmf_tokens/learning_curve.py --task local --arm x3d --lr 1.6e-3 --epochs 20
"""

import argparse
import json
from pathlib import Path

import study  # study.py, beside this script
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(study.TASKS), default="local")
    parser.add_argument("--arm", required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("runs/study_long"))
    args = parser.parse_args()
    task = study.TASKS[args.task]
    (arm,) = [a for a in study.study_arms(task.input_shape) if a.name == args.arm]
    data = study.prepare_data(args.out)[args.task]
    job = study.Job(args.task, arm, args.lr, 0, args.out, data, "cpu", args.threads, args.epochs)
    result = study.run_job(job)
    print(json.dumps({k: result[k] for k in ("arm", "lr", "epochs", "val_curve", "test_top1")}))


if __name__ == "__main__":
    main()
