"""The model zoo as rows of a table: one registered model per row, from its model card."""

from effvid.models.registry import ModelCard, get_model_card, list_models


def _input(card: ModelCard) -> str:
    size = f"{card.input_size}x{card.input_size}"
    return f"{card.num_frames}x{size}" if card.is_video else size


def zoo_rows(pattern: str = "*") -> list[dict[str, str]]:
    """Name, family, params, input, test views and multiply-adds of every matching model,
    grouped by family, cheapest first."""
    cards = sorted(
        map(get_model_card, list_models(pattern)), key=lambda c: (c.family, c.flops_total)
    )
    rows = []
    for card in cards:
        rows.append(
            {
                "model": card.name,
                "family": card.family,
                "params (M)": f"{card.params / 1e6:.2f}",
                "input (T x H x W)": _input(card),
                "views (clips x crops)": f"{card.test_clips}x{card.test_crops}",
                "GFLOPs / view": f"{card.flops_per_view / 1e9:.3f}",
                "GFLOPs total": f"{card.flops_total / 1e9:.3f}",
            }
        )
    return rows
