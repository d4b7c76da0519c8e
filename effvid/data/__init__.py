"""Video data: decoding, clip sampling, dataset readers, transforms and the built-in demo dataset.

Data flows one way, files -> `effvid.data` -> tensors: nothing here imports the models.
"""

from effvid.data.annotations import load_annotations
from effvid.data.annotations.folder_tree import read_folder_tree
from effvid.data.annotations.hmdb51 import read_hmdb51
from effvid.data.annotations.kinetics import read_kinetics
from effvid.data.annotations.list_file import read_classes_file, read_list_file
from effvid.data.annotations.records import AnnotationError, VideoList, VideoRecord
from effvid.data.annotations.ssv2 import read_ssv2
from effvid.data.annotations.ucf101 import read_ucf101
from effvid.data.bad_videos import BadVideoLog, TooManyBadVideos, read_bad_video_report
from effvid.data.check_videos import CheckReport, check_dataset, check_videos
from effvid.data.dataset import VideoDataset
from effvid.data.decoding import DecodedClip, VideoDecodeError, VideoInfo, VideoReader
from effvid.data.demo_data import DemoData, load_demo_dataset, make_demo_data
from effvid.data.demo_scenes import CLASSES as DEMO_CLASSES
from effvid.data.demo_scenes import TIME_REVERSED as DEMO_TIME_REVERSED
from effvid.data.encoding import write_video
from effvid.data.frame_folders import FrameFolderReader
from effvid.data.mixup import MixupCutmix, soft_target_cross_entropy
from effvid.data.preprocessing import EvalClips, Preprocessing
from effvid.data.randaugment import RandAugment
from effvid.data.sampling import ClipSampler, DenseSampler, SegmentSampler
from effvid.data.transforms import ColorJitter, EvalTransform, TrainTransform, crop_view
from effvid.data.video_files import find_videos, open_video

__all__ = [
    "DEMO_CLASSES",
    "DEMO_TIME_REVERSED",
    "AnnotationError",
    "BadVideoLog",
    "CheckReport",
    "ClipSampler",
    "ColorJitter",
    "DecodedClip",
    "DemoData",
    "DenseSampler",
    "EvalClips",
    "EvalTransform",
    "FrameFolderReader",
    "MixupCutmix",
    "Preprocessing",
    "RandAugment",
    "SegmentSampler",
    "TooManyBadVideos",
    "TrainTransform",
    "VideoDataset",
    "VideoDecodeError",
    "VideoInfo",
    "VideoList",
    "VideoReader",
    "VideoRecord",
    "check_dataset",
    "check_videos",
    "crop_view",
    "find_videos",
    "load_annotations",
    "load_demo_dataset",
    "make_demo_data",
    "open_video",
    "read_bad_video_report",
    "read_classes_file",
    "read_folder_tree",
    "read_hmdb51",
    "read_kinetics",
    "read_list_file",
    "read_ssv2",
    "read_ucf101",
    "soft_target_cross_entropy",
    "write_video",
]
