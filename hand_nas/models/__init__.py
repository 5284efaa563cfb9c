"""Encoders, image decoders, graph decoder and the two-hand model built from a ModelCfg.

Importing this package registers every encoder, decoder, bridge, cross-hand attention and preset.
"""
from hand_nas.layers import cross_hand as _cross_hand  # noqa: F401  (registers cross-hand types)
from hand_nas.models import bridges as _bridges  # noqa: F401
from hand_nas.models import image_part as _image_part  # noqa: F401
from hand_nas.models import mobile_encoders as _mobile_encoders  # noqa: F401
from hand_nas.models import presets as _presets  # noqa: F401
from hand_nas.models import resnet as _resnet  # noqa: F401
from hand_nas.models.output import HandOutput
from hand_nas.models.two_hand import TwoHandNet, build_model

__all__ = ["HandOutput", "TwoHandNet", "build_model"]
