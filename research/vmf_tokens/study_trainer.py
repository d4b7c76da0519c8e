"""effvid's Trainer as the study trains: the remedies' diversity term added to the loss it
back-propagates, and how distinct a model's global tokens are recorded every epoch (the
`token_cosine` and `attention_correlation` columns of metrics.jsonl)."""

import torch
from remedies import take_penalties

from effvid.explain.diversity import token_diversity
from effvid.explain.maps import bridge_names
from effvid.train.trainer import Trainer


class StudyTrainer(Trainer):
    """`effvid.train.trainer.Trainer` with the study's objective and token measures."""

    _probe_clips: torch.Tensor | None = None

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss plus the remedies' `token_diversity` term of this forward, if any."""
        penalty = take_penalties(self.model)
        return loss if penalty is None else loss + penalty

    def epoch_metrics(self) -> dict[str, float]:
        """For models with global tokens, how distinct they are on the first validation clips
        (effvid.explain.diversity): recorded every epoch, to see a collapse happen."""
        model = self.evaluation_model()
        if not bridge_names(model):
            return {}
        if self._probe_clips is None:
            count = min(16, len(self.val_set))
            self._probe_clips = torch.stack([self.val_set[i][0] for i in range(count)])
        with self._autocast():
            diversity = token_diversity(model, self._probe_clips.to(self.device))
        return {
            "token_cosine": diversity.final_cosine,
            "attention_correlation": diversity.mean_attention_correlation,
        }


def use_study_trainer() -> None:
    """Make effvid's `train` and `demo` commands train with `StudyTrainer` (in this process)."""
    import effvid.demo
    import effvid.train.trainer

    effvid.train.trainer.Trainer = StudyTrainer
    effvid.demo.Trainer = StudyTrainer
