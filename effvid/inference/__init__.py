"""Inference: prediction on videos and collections, live streams, and one interface over
every runtime (`effvid.inference.runtime`)."""

# What runs a model (`effvid.inference.runtime`); here, so that the command's options can name
# them without loading torch.
RUNTIMES = ("eager", "onnxruntime", "openvino", "executorch")
# The files `effvid export` writes (`effvid.deploy.export`); `onnx` also names ONNX Runtime.
EXPORT_FORMATS = ("onnx", "openvino", "executorch")
