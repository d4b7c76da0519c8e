"""Input normalisation constants shared by several model cards (RGB, pixel values in [0, 1])."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
