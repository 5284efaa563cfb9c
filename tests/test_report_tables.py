from __future__ import annotations

from hand_nas.report.tables import LWA_TABLE1_NOTES, lwa_table1_rows, to_csv, to_markdown


def test_lwa_table1_counts_the_references_and_explains_internet():
    rows = {r["model"]: r for r in lwa_table1_rows({"name": "searched", "gmacs_total": 0.4, "gmacs_image": 0.2,
                                                     "gmacs_pose": 0.2})}
    assert abs(rows["IntagHand"]["total_counted"] - 8.3695) / 8.3695 < 0.01
    assert abs(rows["InterNet"]["image_counted"] - 5.3673) / 5.3673 < 0.01
    assert abs(rows["InterNet"]["pose_counted"] - 6.584) / 6.584 < 0.01 and rows["InterNet"]["pose_dev_pct"] < -50
    assert rows["searched"]["total_published"] is None
    md = to_markdown(list(rows.values()), LWA_TABLE1_NOTES)
    assert "14.12" in md and "6.58" in md and "| searched |" in md
    assert to_csv(list(rows.values())).splitlines()[0].startswith("model,total_counted")
