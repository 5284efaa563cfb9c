from __future__ import annotations

import torch

from hand_nas.metrics import MetricAccumulator, mpjpe, mpvpe, mrrpe, rotate_onto


def _hands(seed=0):
    g = torch.Generator().manual_seed(seed)
    j = torch.randn(2, 2, 21, 3, generator=g, dtype=torch.float64) * 0.03
    v = torch.randn(2, 2, 778, 3, generator=g, dtype=torch.float64) * 0.03
    return v, j


def test_perfect_prediction_is_zero():
    v, j = _hands()
    assert torch.allclose(mpjpe(j, j), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(mpvpe(v, v, j, j), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(mrrpe(j, j), torch.zeros(2, dtype=torch.float64))


def test_translation_per_hand_is_removed_by_both_protocols_but_not_mrrpe():
    v, j = _hands()
    shift = torch.tensor([0.01, -0.02, 0.05], dtype=torch.float64)
    pj, pv = j.clone(), v.clone()
    pj[:, 1] += shift
    pv[:, 1] += shift
    for protocol in ("intaghand", "root"):
        assert mpjpe(pj, j, protocol).abs().max() < 1e-9
        assert mpvpe(pv, v, pj, j, protocol).abs().max() < 1e-9
    assert torch.allclose(mrrpe(pj, j), torch.full((2,), shift.norm().item() * 1000, dtype=torch.float64))


def test_scaled_prediction_hand_computed():
    # One hand, joints on a line: wrist at 0, J9 at 0.1 m, the rest at known offsets.
    j = torch.zeros(1, 2, 21, 3, dtype=torch.float64)
    j[..., 0] = torch.linspace(0, 0.2, 21, dtype=torch.float64)
    j[..., 9, 0] = 0.1
    j[..., 0, 0] = 0.0
    pred = j * 2.0  # twice as large, same wrist
    # IntagHand protocol: root J9 + scale |J9-J0| -> exact
    assert mpjpe(pred, j, "intaghand").abs().max() < 1e-9
    # root protocol (wrist aligned, no scale): error per joint = |x|, mean over joints and hands
    expected = j[0, 0, :, 0].abs().mean().item() * 1000
    assert abs(mpjpe(pred, j, "root").item() - expected) < 1e-6


def test_scale_then_offset_hand_computed():
    j = torch.zeros(1, 2, 21, 3, dtype=torch.float64)
    j[..., 9, 1] = 0.1  # J9 0.1 m above the wrist
    pred = j.clone()
    pred[:, :, 5] += torch.tensor([0.004, 0, 0], dtype=torch.float64)  # one joint off by 4 mm
    assert abs(mpjpe(pred, j).item() - 4.0 / 21) < 1e-9


def test_accumulator_averages_over_samples():
    v, j = _hands()
    acc = MetricAccumulator()
    pj = j.clone()
    pj[0, :, 3] += torch.tensor([0.021, 0, 0], dtype=torch.float64)
    acc.update(v, pj, v, j)
    r = acc.result()
    assert r.count == 2 and abs(r.mpjpe_mm - 0.5) < 1e-6 and abs(r.mpjpe_root_mm - 0.5) < 1e-6


def test_rotate_onto_undoes_a_rotation_and_never_reflects():
    gt = torch.randn(4, 2, 21, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    q = q * torch.linalg.det(q)[..., None, None].sign()  # proper rotations
    assert torch.allclose(rotate_onto(gt @ q, gt), gt, atol=1e-9)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # only a reflection would fit exactly
    out = rotate_onto(mirrored, gt)
    assert torch.allclose(torch.linalg.det(torch.linalg.lstsq(mirrored, out).solution), torch.ones(4, 2, dtype=torch.float64))
