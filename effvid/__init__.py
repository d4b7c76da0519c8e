"""effvid: efficient video recognition.

The public face. Names are loaded on first use, so that `import effvid` (and the `effvid`
command's `--help` and `--version`) do not load torch, PyAV and every model.
"""

from importlib import import_module

from effvid.version import __version__

_PUBLIC = {
    "CheckpointError": "effvid.models.weights",
    "EffvidError": "effvid.errors",
    "FlopCount": "effvid.models.flops",
    "LoadReport": "effvid.models.weights",
    "ModelCard": "effvid.models",
    "Predictor": "effvid.inference.predictor",
    "count_flops": "effvid.models.flops",
    "count_params": "effvid.models.flops",
    "create_model": "effvid.models",
    "get_model_card": "effvid.models",
    "list_models": "effvid.models",
    "load_checkpoint": "effvid.models.weights",
    "load_model": "effvid.models.weights",
}
__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'effvid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
