"""Departments in tree order (what /targets lists): every parent right before its subtree, siblings
by name, depth one more per level; departments with an unknown parent or caught in a cycle of
parents still appear, once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from closeloop.org.service import tree_order


def test_parents_come_before_their_children_and_siblings_by_name() -> None:
    rows = [
        (1, "销售中心", None),
        (2, "华南销售部", 1),
        (3, "华东销售部", 1),
        (4, "华东一组", 3),
        (5, "财务部", None),
        (6, "华东二组", 3),
    ]
    placed = [(node.id, node.depth) for node in tree_order(rows)]
    # by name: 华东一组 < 华东二组 (一 before 二), 华东销售部 < 华南销售部, 财务部 < 销售中心
    assert placed == [(5, 0), (1, 0), (3, 1), (4, 2), (6, 2), (2, 1)]


def test_an_unknown_parent_and_a_cycle_start_trees_of_their_own() -> None:
    rows = [(1, "甲", 99), (2, "乙", 3), (3, "丙", 2), (4, "丁", 2)]
    placed = [(node.id, node.depth) for node in tree_order(rows)]
    # 甲's parent does not exist; 乙 and 丙 are each other's parent: 丙 (before 乙 by name) heads them
    assert placed == [(1, 0), (3, 0), (2, 1), (4, 2)]


@st.composite
def forests(draw: st.DrawFn) -> list[tuple[int, str, int | None]]:
    size = draw(st.integers(min_value=0, max_value=30))
    names = draw(st.lists(st.sampled_from("甲乙丙丁戊己庚辛"), min_size=size, max_size=size))
    return [
        (index + 1, names[index], draw(st.one_of(st.none(), st.integers(min_value=1, max_value=index or 1))) or None)
        for index in range(size)
    ]


@given(forests())
def test_every_department_once_each_right_below_its_parent(rows: list[tuple[int, str, int | None]]) -> None:
    placed = tree_order(rows)
    assert sorted(node.id for node in placed) == sorted(row[0] for row in rows)
    position = {node.id: index for index, node in enumerate(placed)}
    depth = {node.id: node.depth for node in placed}
    for node in placed:
        if node.parent_id is None or node.parent_id == node.id:
            continue
        assert position[node.parent_id] < position[node.id]
        assert depth[node.id] == depth[node.parent_id] + 1
        # nothing outside the parent's subtree sits between the parent and this child
        for between in placed[position[node.parent_id] + 1 : position[node.id]]:
            assert between.depth > depth[node.parent_id]
