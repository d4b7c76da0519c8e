"""Inference: prediction on videos and collections, live streams, and one interface over
every runtime (`effvid.inference.runtime`)."""
