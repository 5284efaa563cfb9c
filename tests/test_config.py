from __future__ import annotations

import pytest

from hand_nas.config import ModelCfg, TrainCfg, replace
from hand_nas.errors import HandNasError
from hand_nas.models.presets import resolve_model
from hand_nas.registry import PRESETS


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_round_trip(name):
    cfg = PRESETS.get(name)()
    assert ModelCfg.from_dict(cfg.to_dict()) == cfg


def test_unknown_and_mistyped_fields_name_the_path():
    d = PRESETS.get("lwa_hand")().to_dict()
    d["graph"]["colour"] = 1
    with pytest.raises(HandNasError, match=r"ModelCfg.graph.colour: unknown field"):
        ModelCfg.from_dict(d)
    d = PRESETS.get("lwa_hand")().to_dict()
    d["encoder"]["stages"][1]["width"] = "wide"
    with pytest.raises(HandNasError, match=r"ModelCfg.encoder.stages\[1\].width: expected an integer"):
        ModelCfg.from_dict(d)
    with pytest.raises(HandNasError, match="TrainCfg.steps: expected an integer"):
        TrainCfg.from_dict({"steps": 1.5})


def test_dotted_replace_and_yaml_files(tmp_path):
    import yaml

    cfg = replace(PRESETS.get("lwa_hand")(), **{"graph.cross_hand": "none", "bridge.levels": 2})
    assert cfg.graph.cross_hand == "none" and cfg.bridge.levels == 2
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"model": cfg.to_dict()}))
    assert resolve_model(str(path)) == cfg
    path.write_text("model: {encoder: {type: resnet50, depth: 3}}")
    with pytest.raises(HandNasError, match=r"m.yaml: ModelCfg.encoder.depth: unknown field"):
        resolve_model(str(path))
    with pytest.raises(HandNasError, match="neither a preset"):
        resolve_model("no_such_model")
