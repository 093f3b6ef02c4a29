"""Values and demonstrations from pasted text and uploaded files."""

from __future__ import annotations

import pytest

from services.recipes.value_import import UploadError, parse_demos, parse_value_lines, parse_values_file


def test_value_lines_with_weights_and_bad_weight():
    p = parse_value_lines("Thai\nItalian | 2\n\nMexican | lots\n")
    assert [(v.text, v.weight) for v in p.values] == [("Thai", 1.0), ("Italian", 2.0)]
    assert p.problems == ["line 4: weight 'lots' is not a number"]


def test_txt_csv_jsonl_uploads():
    assert [v.text for v in parse_values_file("v.txt", b"a\nb\n").values] == ["a", "b"]
    csv = parse_values_file("v.csv", b"value,weight\nx,1\ny,3\nz,abc\n")
    assert [(v.text, v.weight) for v in csv.values] == [("x", 1.0), ("y", 3.0)]
    assert csv.problems == ["line 4: weight 'abc' is not a number"]
    js = parse_values_file("v.jsonl", b'"a"\n{"value": "b", "weight": 2}\n{oops\n[1]\n')
    assert [(v.text, v.weight) for v in js.values] == [("a", 1.0), ("b", 2.0)]
    assert js.problems[0].startswith("line 3: invalid JSON") and js.problems[1].startswith("line 4:")


def test_wrong_format_encoding_and_empty():
    with pytest.raises(UploadError, match="not UTF-8"):
        parse_values_file("v.txt", "café".encode("latin-1"))
    with pytest.raises(UploadError, match="unsupported file type .xlsx"):
        parse_values_file("v.xlsx", b"x")
    with pytest.raises(UploadError, match="empty"):
        parse_values_file("v.csv", b"  \n")
    with pytest.raises(UploadError, match="binary"):
        parse_values_file("v.txt", b"ab\x00cd")


def test_demos_from_jsonl_and_csv():
    p = parse_demos("d.jsonl", b'{"id": "a", "text": "hello", "label": "pos"}\n{"label": "neg"}\n')
    assert p.values[0].id == "a" and p.values[0].attributes == {"label": "pos"}
    assert p.problems == ["line 2: no 'text'"]
    c = parse_demos("d.csv", b"text,label\nnice,pos\nbad,neg,extra\n")
    assert [d.text for d in c.values] == ["nice"] and "line 3" in c.problems[0]
    with pytest.raises(UploadError, match="no 'text' column"):
        parse_demos("d.csv", b"body,label\nx,y\n")


def test_parent_value_files_take_labels_as_one_dimension_files_do():
    from services.recipes.value_import import format_value_lines, parse_parent_values

    def shown(groups):
        return {p: [(v.label, v.text, v.weight) for v in vs] for p, vs in groups.items()}

    # 'label :: text' in the value cell, as on a values line
    groups, bad = parse_parent_values("sub.csv", b"parent,value\npositive,Food :: the food was great\nnegative,cold soup\n")
    assert bad == [] and shown(groups) == {"positive": [("Food", "the food was great", 1.0)], "negative": [("", "cold soup", 1.0)]}
    assert format_value_lines(groups["positive"]) == "Food :: the food was great"  # what the Builder's per-parent box shows
    # a third column named 'label' (and a weight), in any order after the parent
    groups, bad = parse_parent_values("sub.csv", b"parent,label,value,weight\npositive,Staff,kind and quick staff,2\npositive,,plain,x\n")
    assert shown(groups) == {"positive": [("Staff", "kind and quick staff", 2.0)]} and bad == ["line 3: weight 'x' is not a number"]
    # without a header the third column is the label
    groups, bad = parse_parent_values("sub.csv", b"negative,the soup came cold,Soup\nnegative,noise\n")
    assert bad == [] and shown(groups) == {"negative": [("Soup", "the soup came cold", 1.0), ("", "noise", 1.0)]}
    # a label column left empty falls back to the cell's own 'label :: text'
    groups, _ = parse_parent_values("sub.csv", b"parent,value,label\npositive,Calm :: a calm room,\n")
    assert shown(groups) == {"positive": [("Calm", "a calm room", 1.0)]}
