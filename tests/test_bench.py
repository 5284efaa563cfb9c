"""hand-nas bench: the latency table of a checkpoint (tiny model, one round: seconds)."""
from __future__ import annotations

import json

import pytest

from hand_nas.checkpoint import save_checkpoint
from hand_nas.cli import main
from hand_nas.cost.bench import FLAGS, cpu_info, format_bench
from hand_nas.models import build_model

from model_configs import small_model


@pytest.fixture()
def checkpoint(tmp_path, hand_home):
    folder = tmp_path / "ck"
    save_checkpoint(folder, build_model(small_model()), small_model(), input_size=64)
    return folder


def test_cpu_info_names_the_model_and_known_flags_only():
    info = cpu_info()
    assert info["model"] and info["logical_cpus"] >= 1 and set(info["flags"]) <= set(FLAGS)


@pytest.mark.slow
def test_bench_of_a_checkpoint_times_every_engine_against_the_floor(checkpoint):
    from hand_nas.app.bundles import bench_target

    r = bench_target(checkpoint, threads=(1,), batches=(1, 2), size=64, rounds=1, progress=False)
    timed = {(row.engine, row.batch): row for row in r.rows if row.median_ms is not None}
    assert set(timed) == {(e, b) for e in ("torch eager fp32", "ORT fp32") for b in (1, 2)}
    assert all(row.runs == 5 and row.p90_ms >= row.median_ms > 0 for row in timed.values())
    assert r.floor["1"]["matmul_gmacs_per_s"] > 0 and r.floor["1"]["floor_ms_per_image"] > 0
    assert [row.note for row in r.rows if row.engine == "ORT int8"][0].startswith("no int8 graph")
    # the node count of the graph onnxruntime runs: ORT rows only
    assert timed[("torch eager fp32", 1)].nodes is None
    assert timed[("ORT fp32", 1)].nodes > 10 and timed[("ORT fp32", 2)].nodes > 10
    text = format_bench(r)
    assert "compute floor at 1 thread(s)" in text and "fvcore convention" in text and r.cpu["model"] in text
    assert f"| {timed[('ORT fp32', 1)].nodes} |" in text


def test_bench_cli_json_and_bad_lists(checkpoint, capsys):
    main(["bench", str(checkpoint), "--size", "64", "--rounds", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["size"] == 64 and data["cpu"]["model"] and data["rows"]
    assert main(["bench", str(checkpoint), "--threads", "1,x"]) == 2
    assert "--threads '1,x': expected comma-separated integers" in capsys.readouterr().err
