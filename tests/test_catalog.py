"""Catalog rows and the row-aligned tag table used by the tag-affinity signal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmrec import Item
from llmrec.catalog import Catalog
from llmrec.errors import DuplicateItemError, InvalidInputError, UnknownItemError


def item(item_id: str, *tags: str) -> Item:
    return Item(item_id, item_id.title(), "", {"genres": list(tags)})


def tag_names(catalog: Catalog, rows) -> list[set[str]]:
    names = {catalog.tag_id(t): t for t in ("a", "b", "c", "d", "e")}
    return [{names[int(t)] for t in row if t >= 0} for row in catalog.row_tags(np.asarray(rows))]


def test_rows_are_stable_and_never_reused() -> None:
    catalog = Catalog([item("x", "a"), item("y", "b")])
    assert catalog.rows(["x", "y"]).tolist() == [0, 1]
    catalog.remove(["x"])
    assert catalog.upsert([item("z", "c")]).tolist() == [2]
    assert catalog.n_rows == 3 and catalog.item_ids() == ["y", "z"]
    with pytest.raises(UnknownItemError, match="row 0"):
        catalog.item_id_at(0)
    with pytest.raises(UnknownItemError, match="'x'"):
        catalog.row("x")
    with pytest.raises(DuplicateItemError):
        catalog.upsert([item("q"), item("q")])


def test_a_non_sequence_is_an_llmrec_error_not_a_type_error() -> None:
    catalog = Catalog([item("x")])
    with pytest.raises(InvalidInputError, match="items must be"):
        catalog.upsert(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="item_ids must be"):
        catalog.remove(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="item_ids must be a sequence"):
        catalog.remove("x")  # a str is not a list of ids
    assert catalog.item_ids() == ["x"]


def test_row_tags_follow_upserts_removals_and_growth() -> None:
    catalog = Catalog([item("x", "a", "b"), item("y"), item("z", "b")])
    assert tag_names(catalog, [0, 1, 2]) == [{"a", "b"}, set(), {"b"}]
    catalog.upsert([item("y", "c", "d", "e", "a")])  # wider than the table so far
    assert catalog.row_tags(np.array([1])).shape[1] >= 4
    assert tag_names(catalog, [0, 1, 2]) == [{"a", "b"}, {"a", "c", "d", "e"}, {"b"}]
    catalog.upsert([item("x", "c")])  # replacing drops the old tags
    assert tag_names(catalog, [0]) == [{"c"}]
    catalog.remove(["z"])
    assert tag_names(catalog, [2, 99]) == [set(), set()]  # removed and out of range
    catalog.upsert([item(f"n{i}", "e") for i in range(50)])
    assert tag_names(catalog, [52]) == [{"e"}]


def test_tag_affinity_feature_matches_its_definition(fitted_pipeline) -> None:
    pipe = fitted_pipeline
    profile = pipe.profile("u001")
    rows = np.arange(pipe.catalog.n_rows)
    got = pipe._tag_affinity(profile, rows)
    scale = max(abs(v) for v in profile.tag_affinity.values())
    for row in (0, 1, 2, 77, 299):
        tags = pipe.catalog.get(pipe.catalog.item_id_at(row)).tags
        want = sum(profile.tag_affinity.get(t, 0.0) for t in tags) / (scale * math.sqrt(len(tags)))
        assert got[row] == pytest.approx(want, rel=1e-5)


def test_tags_survive_save_and_load(tmp_path) -> None:
    catalog = Catalog([item("x", "a", "b"), item("y", "c")])
    catalog.remove(["x"])
    config = catalog.save(tmp_path)
    loaded = Catalog.load(tmp_path, config)
    assert tag_names(loaded, [0, 1]) == tag_names(catalog, [0, 1]) == [set(), {"c"}]
