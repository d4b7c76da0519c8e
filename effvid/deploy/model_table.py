"""The model zoo as rows of a table: one registered model per row, from its model card or
measured on the spot."""

import torch

from effvid.models import ModelCard, create_model, get_model_card, list_models
from effvid.models.flops import count_flops, count_params


def _input(card: ModelCard) -> str:
    size = f"{card.input_size}x{card.input_size}"
    return f"{card.num_frames}x{size}" if card.is_video else size


def _measured_cost(card: ModelCard) -> tuple[int, int]:
    """(params, multiply-adds per view) of the model as registered, counted on the meta device."""
    with torch.device("meta"):
        model = create_model(card.name)
    return count_params(model), count_flops(model, card.input_shape).total


def model_table(pattern: str = "*", *, measure: bool = False) -> list[dict[str, str]]:
    """Name, family, params, input, test views and multiply-adds (per view and total) of every
    matching model, grouped by family, cheapest first. With `measure`, params and FLOPs are
    counted now instead of read from the cards."""
    cards = sorted(
        map(get_model_card, list_models(pattern)), key=lambda c: (c.family, c.flops_total)
    )
    rows = []
    for card in cards:
        params, flops = _measured_cost(card) if measure else (card.params, card.flops_per_view)
        rows.append(
            {
                "model": card.name,
                "family": card.family,
                "params (M)": f"{params / 1e6:.2f}",
                "input (T x H x W)": _input(card),
                "views (clips x crops)": f"{card.test_clips}x{card.test_crops}",
                "GFLOPs / view": f"{flops / 1e9:.3f}",
                "GFLOPs total": f"{flops * card.test_views / 1e9:.3f}",
            }
        )
    return rows
