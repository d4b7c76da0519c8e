"""Optional dependencies: import one, or say in one line which extra of effvid installs it."""

from importlib import import_module
from types import ModuleType

from effvid.errors import MissingExtraError


def require(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """`import module`, or MissingExtraError naming the extra (`pip install 'effvid[extra]'`);
    `package` is the name to install when it differs from the module's (PIL: pillow)."""
    try:
        return import_module(module)
    except ImportError:
        name = package or module.split(".")[0]
        raise MissingExtraError(
            f"this needs the '{name}' package: pip install 'effvid[{extra}]'"
        ) from None
