"""Matching a re-run's backlog to the previous job's: labels, one-to-one take-over, parents first."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from service.matching import Match, Node, match

KINDS = ("epic", "feature", "story", "task")
WORDS = ("book", "repair", "bike", "pay", "queue", "owner", "track", "revenue")


@st.composite
def backlogs(draw: st.DrawFn, prefix: str = "n") -> list[Node]:
    """A random tree (epics → features → stories → tasks) whose titles and bodies often collide."""
    nodes: list[Node] = []
    for i in range(draw(st.integers(0, 25))):
        depth = draw(st.integers(0, 3))
        parents = [n for n in nodes if n.kind == KINDS[depth - 1]] if depth else []
        if depth and not parents:
            depth, parents = 0, []
        parent = draw(st.sampled_from(parents)) if parents else None
        title = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))
        body = {
            "description": draw(st.sampled_from(("", "one", "two"))),
            "sources": draw(st.lists(st.sampled_from(("S1", "S2", "S3")), max_size=2, unique=True)),
        }
        nodes.append(Node(f"{prefix}{i}", parent.id if parent else None, KINDS[depth], title, body, i))
    return nodes


SENTENCES = {"S1": "Customers book repairs.", "S2": "Mechanics see the queue.", "S3": "Owners track revenue."}


def _invariants(new: list[Node], old: list[Node]) -> None:
    result = match(new, old, SENTENCES, SENTENCES)
    assert set(result.labels) == {n.id for n in new}  # every new item: exactly one label
    assert all(label != Match.VANISHED for label in result.labels.values())
    taken = list(result.previous.values())
    assert len(taken) == len(set(taken))  # a previous item is taken over at most once
    assert set(taken).isdisjoint(result.vanished)
    assert set(taken) | set(result.vanished) == {o.id for o in old}  # the rest is listed as vanished
    assert len(result.vanished) == len(set(result.vanished))
    olds, news = {o.id: o for o in old}, {n.id: n for n in new}
    for new_id, old_id in result.previous.items():
        n, o = news[new_id], olds[old_id]
        assert n.kind == o.kind
        if n.parent_id is not None:  # a child only within its parent's match
            assert result.previous.get(n.parent_id) == o.parent_id
        else:
            assert o.parent_id is None
        assert (result.labels[new_id] == Match.UNCHANGED) == (n.title == o.title and n.body == o.body)


@settings(max_examples=150, deadline=None)
@given(backlogs())
def test_a_backlog_matched_against_itself_is_all_unchanged(nodes: list[Node]) -> None:
    """Matching a backlog against itself labels every item unchanged, each taking over its own twin,
    and leaves nothing vanished."""
    result = match(nodes, nodes, SENTENCES, SENTENCES)
    assert all(label == Match.UNCHANGED for label in result.labels.values())
    assert len(result.labels) == len(nodes) and result.vanished == []
    twins = {n.id: n for n in nodes}
    for new_id, old_id in result.previous.items():
        assert twins[new_id].title == twins[old_id].title and twins[new_id].body == twins[old_id].body
    _invariants(nodes, nodes)


@settings(max_examples=150, deadline=None)
@given(backlogs("n"), backlogs("o"))
def test_any_two_backlogs_match_one_to_one(new: list[Node], old: list[Node]) -> None:
    """For any two backlogs every new item gets exactly one label, every previous item is taken over at
    most once or listed as vanished, kinds agree and a child matches only within its parent's match."""
    _invariants(new, old)


def _tree() -> list[Node]:
    return [
        Node("e1", None, "epic", "Repairs", {"sources": ["S1"]}, 0),
        Node("f1", "e1", "feature", "Book a repair", {"sources": ["S1"]}, 0),
        Node("s1", "f1", "story", "Customer books a repair slot", {"sources": ["S1"], "story_points": 3}, 0),
        Node("t1", "s1", "task", "Build the booking form", {"estimate_hours": 4}, 0),
        Node("p1", "f1", "test_plan", "Test plan: Book a repair", {}, 0),
        Node("e2", None, "epic", "Revenue", {"sources": ["S3"]}, 1),
        Node("f2", "e2", "feature", "Track revenue", {"sources": ["S3"]}, 0),
    ]


def test_changed_added_and_removed_items_are_labelled() -> None:
    """A story whose points changed is updated, a reworded title with the same sources is updated,
    an added feature is new (and so is its child), a removed epic is vanished with its subtree."""
    old = _tree()
    new = [
        replace(old[0], id="E1"),
        replace(old[1], id="F1", parent_id="E1", title="Book a repair online"),
        replace(old[2], id="S1", parent_id="F1", body={"sources": ["S1"], "story_points": 5}),
        replace(old[3], id="T1", parent_id="S1"),
        replace(old[4], id="P1", parent_id="F1", title="Test plan: Book a repair online"),
        Node("F9", "E1", "feature", "Cancel a booking", {"sources": ["S4"]}, 1),
        Node("S9", "F9", "story", "Customer books a repair slot", {"sources": ["S1"], "story_points": 3}, 0),
    ]
    sentences = {**SENTENCES, "S4": "Customers cancel bookings."}
    result = match(new, old, sentences, SENTENCES)
    assert result.labels == {
        "E1": Match.UNCHANGED,
        "F1": Match.UPDATED,
        "S1": Match.UPDATED,
        "T1": Match.UNCHANGED,
        "P1": Match.UNCHANGED,  # a test plan follows its feature
        "F9": Match.NEW,
        "S9": Match.NEW,  # the same text as s1, but under a new parent: never matched across parents
    }
    assert result.previous == {"E1": "e1", "F1": "f1", "S1": "s1", "T1": "t1", "P1": "p1"}
    assert result.vanished == ["e2", "f2"]


def test_dissimilar_siblings_are_not_matched() -> None:
    """Below the threshold a previous sibling is not taken over: the new item is new, the old vanished."""
    old = [Node("e", None, "epic", "Repairs", {"sources": ["S1"]})]
    new = [Node("E", None, "epic", "Quarterly revenue dashboards", {"sources": ["S3"]})]
    result = match(new, old, SENTENCES, SENTENCES)
    assert result.labels == {"E": Match.NEW} and result.vanished == ["e"]


def test_sentences_are_compared_by_text_not_id() -> None:
    """The same sentence under another id (a vision with a sentence inserted before it) still counts."""
    old = [Node("e", None, "epic", "Repairs and bookings", {"sources": ["S1"]})]
    new = [Node("E", None, "epic", "Bookings", {"sources": ["S2"]})]
    moved = {"S1": "Intro.", "S2": SENTENCES["S1"]}
    assert match(new, old, moved, SENTENCES).labels == {"E": Match.UPDATED}
    assert match(new, old, SENTENCES, SENTENCES).labels == {"E": Match.NEW}
