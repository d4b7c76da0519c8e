"""The optimizer's weight-decay groups, the warm-up + cosine schedule, and the accuracies."""

import itertools
import math

import pytest
import torch

from effvid.models import create_model
from effvid.train.metrics import aggregate_views, classification_metrics, confusion_matrix
from effvid.train.optim import build_optimizer, parameter_groups, warmup_cosine


def _names(model, group) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_norms_biases_and_listed_parameters_are_free_of_weight_decay():
    model = create_model("vmf_xxs", num_classes=3)
    decayed, free = parameter_groups(model, 0.05, ["norm", "bias", "listed"])
    assert decayed["weight_decay"] == 0.05 and free["weight_decay"] == 0.0
    free_names, decayed_names = _names(model, free), _names(model, decayed)
    assert "tokens.weight" in free_names  # VMF lists its global tokens
    assert "stem.1.weight" in free_names  # BatchNorm weight
    assert "classifier.classifier.1.bias" in free_names
    assert "stem.0.weight" in decayed_names and "classifier.classifier.1.weight" in decayed_names
    assert free_names | decayed_names == {name for name, _ in model.named_parameters()}
    assert not free_names & decayed_names

    everything = parameter_groups(model, 0.05, [])
    assert len(everything[1]["params"]) == 0
    only_bias = _names(model, parameter_groups(model, 0.05, ["bias"])[1])
    assert only_bias == {name for name in free_names if name.endswith(".bias")}
    with pytest.raises(ValueError, match=r"unknown kinds \['norms'\]"):
        parameter_groups(model, 0.05, ["norms"])


def test_optimizer_kinds():
    model = torch.nn.Linear(2, 2)
    recipe = {"weight_decay": 0.1, "no_decay": ["bias"], "lr": 0.5, "betas": [0.8, 0.9],
              "momentum": 0.7}  # fmt: skip
    adamw = build_optimizer(model, {**recipe, "optimizer": "adamw"})
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.8, 0.9)
    sgd = build_optimizer(model, {**recipe, "optimizer": "sgd"})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    assert sgd.defaults["momentum"] == 0.7 and sgd.param_groups[0]["lr"] == 0.5


def test_warmup_then_cosine_to_the_minimum():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    schedule = warmup_cosine(
        optimizer, total_steps=110, warmup_steps=10, warmup_start=0.1, min_ratio=0.01
    )
    rates = []
    for _ in range(111):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.1)
    assert rates[5] == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert rates[10] == pytest.approx(1.0)
    assert rates[60] == pytest.approx(0.01 + 0.99 * 0.5)  # half-way down the cosine
    assert rates[110] == pytest.approx(0.01)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))


def test_view_aggregation_probabilities_or_logits():
    # One view with a huge logit for class 0, two fairly sure of class 1: the mean of the
    # softmax (each view's vote bounded by 1) picks class 1, the mean of the logits class 0.
    views = torch.tensor([[30.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    probabilities = aggregate_views(views, "prob")
    assert probabilities.sum() == pytest.approx(1.0) and probabilities.argmax() == 1
    assert aggregate_views(views, "logits").argmax() == 0
    torch.testing.assert_close(aggregate_views(views, "logits"), views.mean(0))
    with pytest.raises(ValueError, match="aggregate must be 'prob' or 'logits'"):
        aggregate_views(views, "median")


def test_accuracies_and_mean_class_accuracy_with_an_absent_class():
    scores = torch.tensor(
        [[0.7, 0.2, 0.1, 0.0], [0.1, 0.6, 0.3, 0.0], [0.5, 0.1, 0.4, 0.0], [0.2, 0.3, 0.5, 0.0]]
    )
    labels = torch.tensor([0, 1, 2, 2])  # class 3 has no video
    metrics = classification_metrics(scores, labels, ks=(1, 2))
    assert metrics["top1"] == pytest.approx(75.0)
    assert metrics["top2"] == pytest.approx(100.0)
    # per class: 1/1, 1/1, 1/2; the absent class does not count (it would drag the mean to 62.5)
    assert metrics["mean_class_accuracy"] == pytest.approx(100 * (1 + 1 + 0.5) / 3)
    matrix = confusion_matrix(scores.argmax(1), labels, 4)
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert math.isclose(classification_metrics(scores, labels)["top5"], 100.0)


def test_mean_class_accuracy_is_the_mean_recall_not_the_mean_precision():
    # Three videos of class 0 and one of class 1, all predicted class 0: the recalls are 1 and 0
    # (mean 50%), the precisions 3/4 and 0 (mean 37.5%); the top-1 accuracy is 75%.
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = torch.tensor([0, 0, 0, 1])
    metrics = classification_metrics(scores, labels, ks=(1,))
    assert metrics["top1"] == pytest.approx(75.0)
    assert metrics["mean_class_accuracy"] == pytest.approx(50.0)
    # a class predicted but never the true class does not count either (its recall is undefined)
    labels = torch.tensor([1, 1, 1, 1])
    assert classification_metrics(scores, labels, ks=(1,))["mean_class_accuracy"] == 0.0


def test_views_are_aggregated_as_probabilities_by_default():
    views = torch.tensor([[30.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    torch.testing.assert_close(aggregate_views(views), aggregate_views(views, "prob"))
