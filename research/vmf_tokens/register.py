"""Registers the study's pieces with effvid, once, on import: the demo tasks `global` and
`global_relative` (relation_scenes.py), the per-frame arm `tsn_mobileformer_52m` (tsn.py) and
the token remedies as switches of every Mobile-Former and VMF (remedies.py).

Every script here imports it (beside them on the path: `import register`), and `effvid_study.py`
runs effvid's command line with it. effvid itself never imports anything of research/.
"""

import relation_scenes
import remedies
import tsn  # noqa: F401  (registers tsn_mobileformer_52m)

from effvid.data.demo_data import DemoTask, register_demo_task

RELATION_TASKS = {
    # relations between a cue and a probe far apart in space and time (relation_scenes)
    "global": relation_scenes.RelationScene,
    # the same, every relation needing both key digits (relation_scenes.RelativeRelationScene)
    "global_relative": relation_scenes.RelativeRelationScene,
}

for _name, _scene in RELATION_TASKS.items():
    register_demo_task(
        _name,
        DemoTask(_scene, relation_scenes.CLASSES, relation_scenes.TIME_REVERSED, 24, 80),
    )
remedies.register()
