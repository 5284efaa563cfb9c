"""The hand designs trained under a study's proxy, stored in the study for its report's comparison."""
from __future__ import annotations

from hand_nas.report.study_data import REFERENCE_PRESETS, StudyData, proxy_key


def add_references(sd: StudyData, names=REFERENCE_PRESETS, mano_dir=None, log=print) -> list[dict]:
    """Train each preset under the study's proxy on its data (once: results are kept in the study).

    Each reference is stored as soon as it is trained, under its own key (``storage.write_reference``):
    two reports adding references to one study at once keep both.
    """
    from hand_nas.config import TrainCfg
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.search import storage
    from hand_nas.train import train

    if sd.proxy is None or not sd.data:
        return []
    key = proxy_key(sd.proxy, sd.data)
    have = {r["name"] for r in sd.references}
    for name in names:
        if name in have:
            continue
        cfg = resolve_model(name)
        log(f"reference {name}: training under the study's proxy ({sd.proxy.get('steps')} steps at "
            f"{sd.proxy.get('resolution')} px)")
        res = train(cfg, TrainCfg.from_dict(sd.proxy), sd.data, mano_dir=mano_dir)
        cost = model_cost(build_model(cfg, mano_dir))
        ref = storage.Reference(name, cost.gmacs_total, res.metrics.mpjpe_mm, res.metrics.mpvpe_mm, key)
        storage.write_reference(sd.study, sd.storage, ref)
        sd.references.append(ref.to_dict())
    return sd.references
