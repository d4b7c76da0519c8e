"""What the server runs: the clip model of a checkpoint or an exported file, and the streaming
step of a causal model, opened once through effvid's one inference interface and shared by
every request."""

from dataclasses import asdict, dataclass
from pathlib import Path

from effvid.errors import EffvidError, InputError
from effvid.inference.collection import LAYERS, ClipFunction, feature_function
from effvid.inference.live import LiveRecognizer
from effvid.inference.predictor import Predictor
from effvid.inference.runtime import EagerClipModel


@dataclass
class ServedModel:
    """`predictor`: the clip model (`/v1/predict`); `recognizer`: the streaming step
    (`/v1/stream`), or None with `stream_refusal` saying why; `checkpoint`: set when the model
    is a checkpoint, which `/v1/features` and `/v1/explain` need."""

    predictor: Predictor
    recognizer: LiveRecognizer | None
    stream_refusal: str | None
    checkpoint: Path | None = None
    model_name: str | None = None

    def card(self) -> dict:
        """`GET /v1/model`: the model card, class names, preprocessing, what it can do."""
        info = self.predictor.info
        return {
            "model": info.card.name,
            "runtime": self.predictor.model.runtime,
            "class_names": info.class_names,
            "preprocessing": info.preprocessing.as_dict(),
            "card": asdict(info.card),
            "streaming": self.recognizer is not None,
            "stream_refusal": self.stream_refusal,
            "features": self.checkpoint is not None,
            "explain": self.checkpoint is not None,
        }

    def feature_function(self, layer: str) -> ClipFunction:
        """clips -> {"features": ...} from `layer` of the checkpoint's network."""
        if layer not in LAYERS:
            raise InputError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
        model = self.predictor.model
        if not isinstance(model, EagerClipModel):
            raise InputError("features need the server to run a checkpoint (--checkpoint)")
        return feature_function(model.network, layer, model.device)


def open_served_model(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    onnx: str | Path | None = None,
    stream_onnx: str | Path | None = None,
    runtime: str | None = None,
    window: int | None = None,
) -> ServedModel:
    """The clip model of `checkpoint` or `onnx`; the streaming step of `stream_onnx`, or of the
    checkpoint when it is causal (anything else leaves streaming off, with the reason)."""
    predictor = Predictor(model, checkpoint, onnx=onnx, runtime=runtime)
    recognizer, refusal = None, None
    if stream_onnx is not None or (checkpoint is not None and onnx is None):
        try:
            recognizer = LiveRecognizer(
                None if stream_onnx else checkpoint, model=model, onnx=stream_onnx,
                runtime=runtime if stream_onnx else None, window=window,
            )  # fmt: skip
        except EffvidError as error:
            if stream_onnx is not None:
                raise
            # the server's own paths are not the client's business
            reason = str(error).replace(str(checkpoint), Path(checkpoint).name)
            refusal = f"this server cannot stream: {reason}"
    else:
        refusal = "this server cannot stream: start it with a causal checkpoint or --stream-onnx"
    served_checkpoint = Path(checkpoint) if checkpoint is not None and onnx is None else None
    return ServedModel(predictor, recognizer, refusal, served_checkpoint, model)
