"""ReasonRequest.relations: a signal states its relation (a plan fact), never its name."""

from __future__ import annotations

import pytest

from llmrec.catalog import Catalog
from llmrec.errors import InvalidInputError
from llmrec.generation import ContentGenerator, ReasonRequest
from llmrec.types import RELATIONS, Item

#: What each relation adds to the plan of a request built without one.
RELATION_FACT = {
    "co_consumption": "co_consumption",
    "similar_text": "similar_text",
    "shared_tags": "preference",
    "popular": "status",
    "query": "query",
}


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        [
            Item("1", "Toy Story (1995)", "", {"genres": ["Animation", "Comedy"]}),
            Item("2", "Aladdin (1992)", "", {"genres": ["Animation", "Musical"]}),
            Item("3", "Heat (1995)", "", {"genres": ["Action", "Crime"]}),
        ]
    )


@pytest.fixture
def gen(catalog) -> ContentGenerator:
    return ContentGenerator("template", catalog=catalog)


def request(catalog: Catalog, signals: dict[str, float], **kw) -> ReasonRequest:
    return ReasonRequest(
        "u", catalog.get("1"), (catalog.get("2"),), signals, matched_tags=("Comedy",), **kw
    )


def kinds(gen: ContentGenerator, req: ReasonRequest) -> set[str]:
    return {f.kind for f in gen.plan(req)}


def test_a_named_relation_states_its_fact(catalog, gen) -> None:
    req = request(catalog, {"my_cf": 1.0}, relations={"my_cf": "co_consumption"})
    [fact] = [f for f in gen.plan(req) if f.kind == "co_consumption"]
    assert fact.item_id == "2" and fact.text == "People who liked Aladdin also liked it."
    assert gen.template_text(req) == "People who liked Aladdin also liked Toy Story."
    assert "People who liked Aladdin also liked it." in gen.prompt(req)[-1]["content"]


def test_an_unnamed_unknown_signal_states_no_relation(catalog, gen) -> None:
    req = request(catalog, {"my_cf": 1.0})
    assert not kinds(gen, req) & {"co_consumption", "similar_text", "status"}
    # Only what holds: Aladdin shares the genre Animation with Toy Story.
    text = gen.template_text(req)
    assert "Animation" in text and "Aladdin" in text and gen.verify(text, req).ok


def test_the_relation_wins_over_a_built_in_name(catalog, gen) -> None:
    req = request(catalog, {"co_occurrence": 1.0}, relations={"co_occurrence": "popular"})
    assert "status" in kinds(gen, req) and "co_consumption" not in kinds(gen, req)


@pytest.mark.parametrize(
    "name, relation",
    [
        ("co_occurrence", "co_consumption"),
        ("ease", "co_consumption"),
        ("sequential", "co_consumption"),
        ("text_similarity", "similar_text"),
        ("tag_affinity", "shared_tags"),
        ("popularity", "popular"),
        ("query", "query"),
    ],
)
def test_built_in_names_stand_for_their_relation(catalog, gen, name, relation) -> None:
    plain = request(catalog, {name: 1.0}, query="toy")
    named = request(catalog, {name: 1.0}, query="toy", relations={name: relation})
    assert RELATION_FACT[relation] in kinds(gen, plain)
    assert gen.prompt(plain) == gen.prompt(named)
    assert gen.template_text(plain) == gen.template_text(named)


def test_every_relation_has_a_fact(catalog, gen) -> None:
    for relation in RELATIONS:
        req = request(catalog, {"s": 1.0}, query="toy", relations={"s": relation})
        assert RELATION_FACT[relation] in kinds(gen, req), relation


@pytest.mark.parametrize("relations", [{"my_cf": "fans"}, {"my_cf": 1}, ["co_consumption"]])
def test_bad_relations_are_invalid_input(catalog, relations) -> None:
    with pytest.raises(InvalidInputError, match="relations"):
        request(catalog, {"my_cf": 1.0}, relations=relations)
