"""effvid's command line with the study's pieces: its demo tasks, per-frame arm and token
remedies registered (register.py), and training by `StudyTrainer` (study_trainer.py).

    python research/vmf_tokens/effvid_study.py demo --out runs/x data.demo_task=global
    python research/vmf_tokens/effvid_study.py train recipe.yaml model.args.token_identity=true
"""

import sys

import register  # noqa: F401
from study_trainer import use_study_trainer

from effvid.cli import main

if __name__ == "__main__":
    use_study_trainer()
    sys.exit(main())
