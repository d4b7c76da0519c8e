"""The demo job's own measures (effvid/demo.py)."""

from types import SimpleNamespace

import pytest
import torch

from effvid.data.demo_data import TASKS
from effvid.demo import reversal_accuracy


@pytest.mark.parametrize("task", sorted(TASKS))
def test_reversed_clips_are_scored_against_their_own_task_s_twin_classes(task):
    """`effvid demo data.demo_task=global` must read a reversed clip's twin from the global
    task's table (larger <-> smaller, higher <-> lower), not the local task's."""
    twins = TASKS[task].time_reversed
    labels = torch.arange(len(twins))
    scores = torch.nn.functional.one_hot(torch.tensor([twins[i] for i in range(len(twins))]))
    results = SimpleNamespace(labels=labels, scores=scores.float())
    assert reversal_accuracy(results, task) == 100.0
