"""Training and evaluation: recipes, the training loop (one CPU to many GPUs), checkpoints and
metrics."""
