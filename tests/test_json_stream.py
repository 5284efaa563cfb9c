from __future__ import annotations

import json

import pytest

import hand_nas.json_stream as js
from hand_nas.errors import HandNasError
from hand_nas.files import read_json

DOC = {"images": [{"id": 1, "file_name": "a\u00e9b.jpg", "x": [1.5, -2e3, True, None]}, {"id": 22}],
       "info": "v1", "annotations": [{"id": 3, "bbox": [1, 2, 3, 4]}], "empty": {}, "none": []}


def test_values_at_a_depth_come_in_file_order_with_their_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(js, "BLOCK_CHARS", 3)  # every value spans blocks
    path = tmp_path / "d.json"
    path.write_text(json.dumps(DOC, indent=1, ensure_ascii=False))
    assert list(js.iter_values(path, 2)) == [(("images", 0), DOC["images"][0]), (("images", 1), DOC["images"][1]),
                                             (("info",), "v1"), (("annotations", 0), DOC["annotations"][0])]
    assert list(js.iter_values(path, 0)) == [((), DOC)]
    path.write_text("12345678")  # a number cut by the block must not come back as 123
    assert list(js.iter_values(path, 1)) == [((), 12345678)]


@pytest.mark.parametrize("block", [3, 1 << 20])
def test_every_truncation_and_stray_character_gets_read_json_s_one_line_error(tmp_path, monkeypatch, block):
    monkeypatch.setattr(js, "BLOCK_CHARS", block)
    text = json.dumps(DOC, indent=1, ensure_ascii=False)
    path = tmp_path / "d.json"
    for bad in [text[:k] for k in range(len(text))] + [text[:k] + "#" + text[k:] for k in range(0, len(text), 3)]:
        path.write_text(bad)
        try:
            read_json(path)
            continue  # still valid JSON (e.g. '#' inside a string)
        except HandNasError as exc:
            expected = str(exc)
        with pytest.raises(HandNasError) as err:
            list(js.iter_values(path, 2))
        assert str(err.value) == expected


def test_non_utf8_is_one_line_with_the_byte_offset(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(HandNasError) as err:
        list(js.iter_values(path, 1))
    assert str(err.value) == str(pytest.raises(HandNasError, read_json, path).value) == \
        f"{path}: not UTF-8 text (byte 0xff at offset 7)"
