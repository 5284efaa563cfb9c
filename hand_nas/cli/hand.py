"""``hand-nas hand``: generate the procedural MANO pair, inspect a MANO folder, render poses, build the hierarchy."""
from __future__ import annotations

from hand_nas.cli._base import Command, Group
from hand_nas.cli._common import add_mano


class Generate(Command):
    name, help = "generate", "write the procedural MANO_RIGHT.pkl / MANO_LEFT.pkl pair"

    def add_arguments(self, p) -> None:
        p.add_argument("--out", required=True)

    def run(self, args) -> None:
        from hand_nas.hand.procedural import write_mano_pair

        for side, path in write_mano_pair(args.out).items():
            print(f"{side}: {path}")


class Info(Command):
    name, help = "info", "load a MANO folder through smplx and print its facts"

    def add_arguments(self, p) -> None:
        add_mano(p)

    def run(self, args) -> None:
        import json

        from hand_nas.hand.facts import hand_facts

        print(json.dumps(hand_facts(args.mano), indent=2))


class Show(Command):
    name, help = "show", "render six named poses of both hands to a PNG"

    def add_arguments(self, p) -> None:
        p.add_argument("--out", required=True)
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.data.sheet import pose_sheet

        print(f"wrote {pose_sheet(args.out, args.mano)}")


class BuildGraph(Command):
    name, help = "build-graph", "(re)build the mesh hierarchy of a hand topology"

    def add_arguments(self, p) -> None:
        add_mano(p)
        p.add_argument("--out", help="file to write (default: the hand-nas cache)")

    def run(self, args) -> None:
        from hand_nas.hand.hierarchy import SIZES, build_hierarchy, hierarchy_path, save_hierarchy
        from hand_nas.hand.mano import HandModel

        faces = HandModel(args.mano).faces["right"]
        h = build_hierarchy(faces)
        path = save_hierarchy(h, args.out or hierarchy_path(h.fingerprint))
        real = [int(m.sum()) for m in h.mask]
        print(f"levels {list(SIZES)} slots, real nodes {real}; checksum {h.checksum}")
        print(f"wrote {path}")


class ConvertMano(Command):
    name, help = "convert-mano", "rewrite official (chumpy) MANO pickles as plain numpy pickles"

    def add_arguments(self, p) -> None:
        p.add_argument("src")
        p.add_argument("dst")

    def run(self, args) -> None:
        from hand_nas.hand.mano import convert_mano

        for path in convert_mano(args.src, args.dst):
            print(f"wrote {path}")


GROUP = Group("hand", "hand model: generate, inspect, mesh hierarchy", "hand_command",
              (Generate, Info, Show, BuildGraph, ConvertMano))
