from __future__ import annotations

import json
import random

import pytest

import hand_nas.json_stream as js
from hand_nas.errors import HandNasError
from hand_nas.files import read_json

DOC = {"images": [{"id": 1, "file_name": "a\u00e9b.jpg", "x": [1.5, -2e3, True, None]}, {"id": 22}],
       "info": "v1", "annotations": [{"id": 3, "bbox": [1, 2, 3, 4]}], "empty": {}, "none": []}
NESTED = {"0": {"1": {"left": {"pose": [0.1, -2.5e-18]}, "right": None}, "2": None}, "empty": {}, "3": {"4": [1, 2]}}


def test_items_and_nested_items_come_in_file_order_equal_to_json_loads(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(DOC, indent=1, ensure_ascii=False))
    assert list(js.items(path, "images.item")) == DOC["images"]
    assert list(js.items(path, "annotations.item")) == DOC["annotations"]
    assert list(js.items(path, "none.item")) == []
    assert js.top_level(path) == {"images": "start_array", "info": "string", "annotations": "start_array",
                                  "empty": "start_map", "none": "start_array"}
    path.write_text(json.dumps(NESTED))
    assert list(js.nested_items(path)) == [("0", "1", NESTED["0"]["1"]), ("0", "2", None), ("3", "4", [1, 2])]
    assert js.top_level(tmp_path / "d.json") == {k: "start_map" for k in NESTED}


def test_numbers_are_python_floats_and_ints_equal_to_json_loads(tmp_path):
    r = random.Random(0)
    values = [r.gauss(0, 1) * 10 ** r.randint(-20, 20) for _ in range(2000)] + [0.1, -0.0, 1e-320, 5e-324, 1.7976931348623157e308,
                                                                            2 ** 63 - 1, 1 - 2 ** 63, 0, 7]
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"a": {"b": values}}))
    ref = json.loads(path.read_text())["a"]["b"]
    (_, _, got), = js.nested_items(path)
    assert [type(x) for x in got] == [type(x) for x in ref] and got == ref
    assert [repr(x) for x in got] == [repr(x) for x in ref]  # -0.0 stays -0.0
    path.write_text(json.dumps({"c": [values]}))
    assert next(js.items(path, "c.item")) == ref
    path.write_text(json.dumps([2 ** 63]))  # yajl's integers are 64-bit; json.loads would take it
    assert _structure_or_json_error(path, lambda p: js.items(p, "item")) == f"{path}: not valid JSON (integer overflow)"


def _structure_or_json_error(path, fn):
    with pytest.raises(HandNasError) as err:
        list(fn(path))
    return str(err.value)


def test_every_truncation_and_stray_character_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "d.json"
    for doc, fn in ((DOC, lambda p: js.items(p, "images.item")), (NESTED, js.nested_items)):
        text = json.dumps(doc, indent=1, ensure_ascii=False)
        for bad in [text[:k] for k in range(len(text))] + [text[:k] + "#" + text[k:] for k in range(0, len(text), 3)]:
            path.write_text(bad)
            try:
                read_json(path)
                continue  # still valid JSON (e.g. '#' inside a string)
            except HandNasError:
                pass
            message = _structure_or_json_error(path, fn)
            assert message.startswith(f"{path}: not valid JSON (") and message.endswith(")"), (bad, message)
            assert "\n" not in message and "right here" not in message, message
    path.write_text('{"a": [1, 2]} x')
    assert _structure_or_json_error(path, lambda p: js.items(p, "a.item")) == f"{path}: not valid JSON (trailing garbage)"
    path.write_text('{"a": [1, 2')
    assert _structure_or_json_error(path, js.top_level) == f"{path}: not valid JSON (premature EOF)"


def test_nested_items_says_where_the_structure_is_not_an_object_of_objects(tmp_path):
    path = tmp_path / "m.json"
    for doc, where in (([1], "the top level"), (3, "the top level"), ({"0": {}, "7": [1]}, "7"), ({"a": None}, "a")):
        path.write_text(json.dumps(doc))
        assert _structure_or_json_error(path, js.nested_items) == \
            f"{path}: expected {{key: {{key: value}}}}, found something else at {where}"


def test_non_utf8_and_missing_files_are_one_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'{"a": ["\xff"]}')
    assert _structure_or_json_error(path, lambda p: js.items(p, "a.item")) == \
        f"{path}: not UTF-8 text (invalid bytes in UTF8 string.)"
    assert _structure_or_json_error(tmp_path / "no.json", js.nested_items) == f"{tmp_path / 'no.json'}: missing"
