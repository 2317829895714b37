"""ReasonRequest.relations: a signal is put into words by its relation, never its name."""

from __future__ import annotations

import pytest

from llmrec.catalog import Catalog
from llmrec.errors import InvalidInputError
from llmrec.generation import ContentGenerator, ReasonRequest
from llmrec.generation.evidence import facts
from llmrec.generation.prompts import conversation
from llmrec.types import RELATIONS, Item

CO_PHRASE = "Why: fans of Aladdin also enjoyed it."
CO_TAIL = "that people with your taste also enjoyed."


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


def why(gen: ContentGenerator, req: ReasonRequest) -> str | None:
    user = gen.prompt(req)[-2]["content"]
    return next((line for line in user.splitlines() if line.startswith("Why:")), None)


def test_a_named_relation_chooses_the_phrase(catalog, gen) -> None:
    req = request(catalog, {"my_cf": 1.0}, relations={"my_cf": "co_consumption"})
    assert why(gen, req) == CO_PHRASE
    assert gen.template_text(req).endswith(CO_TAIL)
    retry = conversation(facts(req), attempt=2)  # the second attempt opens with it
    assert retry[-1]["content"] == "You may like Toy Story because fans of Aladdin also enjoyed it"


def test_an_unnamed_unknown_signal_states_no_relation(catalog, gen) -> None:
    req = request(catalog, {"my_cf": 1.0})
    assert why(gen, req) is None
    assert gen.template_text(req) == (
        "Because you enjoyed Aladdin, Toy Story is an Animation and Comedy pick picked for "
        "your taste."
    )


def test_the_relation_wins_over_a_built_in_name(catalog, gen) -> None:
    req = request(catalog, {"co_occurrence": 1.0}, relations={"co_occurrence": "popular"})
    assert why(gen, req) == "Why: it is popular right now."
    assert gen.template_text(req).endswith("that is popular right now.")


@pytest.mark.parametrize(
    "name, relation, phrase",
    [
        ("co_occurrence", "co_consumption", CO_PHRASE),
        ("ease", "co_consumption", CO_PHRASE),
        ("sequential", "co_consumption", CO_PHRASE),
        ("text_similarity", "similar_text", "Why: it is similar in theme to Aladdin."),
        ("tag_affinity", "shared_tags", "Why: it matches your interest in Comedy."),
        ("popularity", "popular", "Why: it is popular right now."),
        ("query", "query", "Why: it fits your search 'toys'."),
    ],
)
def test_built_in_names_stand_for_their_relation(catalog, gen, name, relation, phrase) -> None:
    plain = request(catalog, {name: 1.0}, query="toys")
    named = request(catalog, {name: 1.0}, query="toys", relations={name: relation})
    assert why(gen, plain) == phrase
    assert gen.prompt(plain) == gen.prompt(named)
    assert gen.template_text(plain) == gen.template_text(named)


def test_every_relation_has_a_phrase(catalog, gen) -> None:
    for relation in RELATIONS:
        req = request(catalog, {"s": 1.0}, query="toys", relations={"s": relation})
        assert why(gen, req) is not None, relation


@pytest.mark.parametrize("relations", [{"my_cf": "fans"}, {"my_cf": 1}, ["co_consumption"]])
def test_bad_relations_are_invalid_input(catalog, relations) -> None:
    with pytest.raises(InvalidInputError, match="relations"):
        request(catalog, {"my_cf": 1.0}, relations=relations)
