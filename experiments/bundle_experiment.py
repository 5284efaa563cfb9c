"""What the experiments on one compressed bundle share: their command line and the bundle they open.

    args, b = bundle_experiment(__doc__, "int8_forms")  # BUNDLE --out OUT [--work DIR] [--rounds N]
    b.model, b.config, b.report, b.train, b.size, b.work
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Bundle:
    path: Path
    model: object
    config: dict
    report: dict
    train: object  # hand_nas.config.TrainCfg of the bundle's model
    size: int  # the size its programs were exported at
    work: Path  # where the experiment keeps what it writes and reuses


def bundle_experiment(doc: str, work: str) -> tuple[argparse.Namespace, Bundle]:
    """Parse ``BUNDLE --out OUT [--work DIR] [--rounds N]`` (help from ``doc``'s first line), set one torch thread
    and open the bundle (its manifest verified); ``work`` defaults to BUNDLE/../``work``."""
    import torch

    from compress.bundle import open_bundle
    from hand_nas.config import TrainCfg
    from hand_nas.errors import HandNasError

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--work", help=f"folder for what it writes and reuses (default: BUNDLE/../{work})")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = Path(args.bundle)
    try:
        model, config, report = open_bundle(path)
    except HandNasError as e:
        raise SystemExit(str(e)) from None
    return args, Bundle(path, model, config, report, TrainCfg.from_dict(config["train"]), report["size"],
                        Path(args.work or path.parent / work))
