"""Shared fixtures: a private hand-nas cache, the procedural hand, and small data sets."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def hand_home(tmp_path_factory):
    """Point HAND_NAS_HOME at a per-session folder so tests never touch a user's cache."""
    home = tmp_path_factory.mktemp("hand_nas_home")
    old = os.environ.get("HAND_NAS_HOME")
    os.environ["HAND_NAS_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("HAND_NAS_HOME", None)
    else:
        os.environ["HAND_NAS_HOME"] = old


@pytest.fixture(scope="session")
def hand_model(hand_home):
    from hand_nas.hand.mano import HandModel

    return HandModel().eval()


@pytest.fixture(scope="session")
def mano_dir(hand_model):
    return hand_model.mano_dir


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory, hand_home):
    """24 synthetic samples at 128x128."""
    from hand_nas.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("synth") / "set"
    synthesize(out, 24, seed=3, size=128, progress=False)
    return out


@pytest.fixture(scope="session")
def interhand_tree(tmp_path_factory, hand_home):
    from hand_nas.data.interhand_mock import write_mock_interhand

    root = tmp_path_factory.mktemp("ih26m")
    info = write_mock_interhand(root, split="test", captures=2, frames=2, cameras=2)
    return root, info
