"""The `effvid` command. Thin: it parses arguments and calls the library."""

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from effvid import __version__
from effvid.models import get_model_card
from effvid.models.registry import UnknownModelError
from effvid.models.zoo import zoo_rows
from effvid.tables import TABLE_STYLES, render_table


def _models(args: argparse.Namespace) -> int:
    rows = zoo_rows(args.pattern)
    if not rows:
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
        return 1
    print(render_table(rows, args.format), end="")
    if args.format == "table":
        print("\nFLOPs are multiply-adds; total = per view x test views.")
    return 0


def _card(args: argparse.Namespace) -> int:
    card = get_model_card(args.name)
    for field in dataclasses.fields(card):
        print(f"{field.name:>16}: {getattr(card, field.name)}")
    print(f"{'input_shape':>16}: {card.input_shape}")
    print(f"{'flops_total':>16}: {card.flops_total} ({card.test_views} views)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effvid", description="Efficient video recognition.")
    parser.add_argument("--version", action="version", version=f"effvid {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the registered models with their costs")
    models.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'vmf_*'")
    models.add_argument("--format", choices=TABLE_STYLES, default="table")
    models.set_defaults(run=_models)

    card = commands.add_parser("card", help="print the model card of one registered model")
    card.add_argument("name")
    card.set_defaults(run=_card)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UnknownModelError as error:
        print(f"effvid: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
