"""The fact plan, verification against it, and the content kinds (no model needed)."""

from __future__ import annotations

import time

import pytest

from llmrec import Event, Fact, Item, Pipeline
from llmrec.catalog import Catalog
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.generation import (
    HEADLINE_CHARS,
    ContentGenerator,
    ReasonRequest,
    item_facts,
    relation_facts,
    request_plan,
    taste_facts,
    verify_text,
)
from llmrec.generation.claims import sentences
from llmrec.generation.plan import share_lower_bound
from llmrec.generation.text import title_clauses
from llmrec.testing import FunctionChat

# --------------------------------------------------------------------------- catalogs

SHOP = [
    Item("j1", "Alpine Down Jacket", "A warm down jacket for cold alpine days.",
         {"category": "Jackets", "brand": "Summit", "price": 189.0}),
    Item("b1", "Kids Hiking Boots", "Waterproof boots for young hikers.",
         {"category": "Footwear", "brand": "Trailkid", "price": 59.0}),
    Item("h1", "Hydration Running Belt", "A belt that holds two bottles on long runs.",
         {"category": "Running", "brand": "Stride", "price": 35.0}),
    Item("r1", "Road Running Shoes", "Light shoes for road running.",
         {"category": "Running", "brand": "Stride", "price": 120.0, "tags": ["running"]}),
    Item("p1", "Mini Bike Pump", "A small pump that fits in a jersey pocket.",
         {"category": "Cycling", "brand": "Velo", "price": 25.0}),
    Item("m1", "Cycling Helmet MIPS", "A light helmet with MIPS protection.",
         {"category": "Cycling", "brand": "Velo", "price": 120.0, "tags": ["cycling"]}),
    Item("f1", "Polar Fleece Pullover", "A soft fleece pullover for cool evenings.",
         {"category": "Fleece", "brand": "Summit", "price": 70.0}),
    Item("s1", "Two-in-One Shell Jacket", "A two-in-one shell with a zip-up liner.",
         {"category": "Jackets", "brand": "Summit", "price": 240.0}),
    Item("c1", "Climbing Harness", "A harness for sport climbing.",
         {"category": "Climbing", "brand": "Rockit", "price": 80.0, "tags": ["climbing"]}),
]  # fmt: skip

MOVIES = [
    Item("sbm", "Stand by Me (1986)", "", {"genres": ["Adventure", "Comedy", "Drama"], "year": 1986}),
    Item("wok", "Star Trek: The Wrath of Khan (1982)", "",
         {"genres": ["Action", "Adventure", "Sci-Fi"], "year": 1982}),
    Item("ll", "Liar Liar (1997)", "", {"genres": ["Comedy"], "year": 1997}),
    Item("rotj", "Return of the Jedi (1983)", "",
         {"genres": ["Action", "Adventure", "Romance", "Sci-Fi", "War"], "year": 1983}),
    Item("lis", "Lost in Space (1998)", "", {"genres": ["Action", "Sci-Fi", "Thriller"], "year": 1998}),
    Item("brian", "Monty Python's Life of Brian (1979)", "", {"genres": ["Comedy"], "year": 1979}),
    Item("ala", "Aladdin (1992)", "", {"genres": ["Animation", "Children's", "Comedy"], "year": 1992}),
    Item("fargo", "Fargo (1996)", "A kidnapping in snowy Minnesota goes wrong.",
         {"genres": ["Crime", "Drama"], "year": 1996, "director": ["Joel Coen"]}),
    Item("nc", "No Country for Old Men (2007)", "A hunter finds drug money in Texas.",
         {"genres": ["Crime", "Thriller"], "year": 2007, "director": ["Joel Coen"]}),
    Item("heat", "Heat (1995)", "", {"genres": ["Action", "Crime"], "year": 1995,
                                      "director": ["Michael Mann"]}),
]  # fmt: skip


@pytest.fixture
def shop() -> Catalog:
    return Catalog(SHOP)


@pytest.fixture
def movies() -> Catalog:
    return Catalog(MOVIES)


def _verify(catalog: Catalog, text: str, target: str, evidence=(), plan=None, **kw):
    return verify_text(
        text,
        plan,
        target=catalog.get(target),
        evidence=[catalog.get(e) for e in evidence],
        catalog=catalog,
        **kw,
    )


# --------------------------------------------------------------------------- plan facts


def test_item_facts_state_whatever_the_catalog_has(shop) -> None:
    facts = {f.attribute: f for f in item_facts(shop.get("j1"))}
    assert facts["brand"].text == "Made by Summit." and facts["brand"].provenance == "catalog:brand"
    assert facts["price"].values == ("$189",)
    assert facts["category"].values == ("Jackets",)
    assert facts["text"].kind == "description"


def test_a_shared_director_is_a_relation(movies) -> None:
    [fact] = [
        f
        for f in relation_facts(movies.get("nc"), movies.get("fargo"))
        if f.attribute == "director"
    ]
    assert fact.kind == "shared_attribute" and fact.item_id == "fargo"
    assert fact.text == "Shares director Joel Coen with Fargo." and fact.values == ("Joel Coen",)


def test_few_people_rank_below_many_with_a_lower_share() -> None:
    # 5 of 6 people is a higher share than 49 of 71 but much weaker evidence.
    assert share_lower_bound(5, 6) < share_lower_bound(49, 71) < 49 / 71
    assert share_lower_bound(0, 10) == 0.0 and share_lower_bound(3, 0) == 0.0
    assert 0.0 < share_lower_bound(1, 1) < share_lower_bound(100, 100) < 1.0


def test_no_relation_fact_when_none_holds(movies, shop) -> None:
    assert relation_facts(movies.get("heat"), movies.get("ala")) == []
    assert relation_facts(shop.get("c1"), shop.get("p1"), co_users=(1, 30), similarity=0.1) == []


def test_similar_text_needs_close_vectors_and_a_shared_word(shop) -> None:
    boots, shoes, belt = shop.get("b1"), shop.get("r1"), shop.get("h1")

    # sturdy boots and light shoes: close vectors, nothing a reader can see in common
    def similar(target, other, sim):  # noqa: ANN001, ANN202
        facts = relation_facts(target, other, similarity=sim, threshold=0.5)
        return [f for f in facts if f.kind == "similar_text"]

    assert similar(boots, shoes, 0.9) == []
    (fact,) = similar(belt, shoes, 0.9)
    assert fact.values == ("running",)
    assert similar(belt, shoes, 0.4) == []


def test_a_co_consumption_figure_needs_two_people(movies) -> None:
    facts = relation_facts(movies.get("nc"), movies.get("heat"), co_users=(92, 230))
    [fact] = [f for f in facts if f.kind == "co_consumption"]
    assert fact.kind == "co_consumption"
    assert fact.text == "Liked by 40% of the 230 people who liked Heat."
    assert fact.weight == pytest.approx(share_lower_bound(92, 230)) and 0.33 < fact.weight < 0.4
    facts = relation_facts(movies.get("nc"), movies.get("heat"), co_users=(1, 230))
    assert [f.kind for f in facts] == ["shared_attribute"]  # the genre Crime, no figure


def _pipeline(items, events) -> Pipeline:
    pipe = Pipeline.from_catalog(
        items, encoder="hashing", llm="template", device="cpu", show_progress=False
    )
    pipe.observe_many(events)
    return pipe


def test_the_pipeline_plan_counts_co_consumption_from_the_profiles() -> None:
    items = MOVIES
    events, t = [], 0.0
    # 10 people liked Heat; 4 of them also liked Fargo.
    for n in range(10):
        events.append(Event(f"p{n}", "heat", "like", timestamp=(t := t + 1)))
        if n < 4:
            events.append(Event(f"p{n}", "fargo", "like", timestamp=(t := t + 1)))
    events.append(Event("me", "heat", "like", timestamp=(t := t + 1)))
    pipe = _pipeline(items, events)
    [rec] = [r for r in pipe.recommend("me", k=len(items), generate=False) if r.item_id == "fargo"]
    co = [f for f in rec.explanation.plan if f.kind == "co_consumption"]
    # "me" liked Heat too: 11 people liked Heat, 4 of them Fargo.
    assert [f.text for f in co] == ["Liked by 36% of the 11 people who liked Heat."]
    assert (
        co[0].provenance == "profiles:co-consumption"
        and "heat" in rec.explanation.evidence_item_ids
    )
    assert rec.to_dict()["explanation"]["plan"][0]["kind"] == "attribute"


def test_the_pipeline_plan_has_a_shared_director_and_no_unrelated_evidence() -> None:
    events = [
        Event("me", "fargo", "like", timestamp=1.0),
        Event("me", "ala", "like", timestamp=2.0),
    ]
    pipe = _pipeline(MOVIES, events)
    [rec] = [r for r in pipe.recommend("me", k=len(MOVIES), generate=True) if r.item_id == "nc"]
    plan = rec.explanation.plan
    assert any(f.kind == "shared_attribute" and f.values == ("Joel Coen",) for f in plan)
    # Aladdin shares nothing with No Country for Old Men: it is not evidence.
    assert "ala" not in rec.explanation.evidence_item_ids
    assert not [f for f in plan if f.item_id == "ala"]
    assert "Joel Coen" in rec.text and "Fargo" in rec.text
    assert verify_text(rec.text, plan, target=pipe.catalog.get("nc"), catalog=pipe.catalog).ok


# --------------------------------------------------------------------------- false claims


@pytest.mark.parametrize(
    "text,target,evidence",
    [
        ("You may like Stand by Me because it is a Comedy with a theme close to Star Trek: "
         "The Wrath of Khan.", "sbm", ("wok",)),
        ("You may like Liar Liar because it is a comedy with a theme similar to Return of "
         "the Jedi.", "ll", ("rotj",)),
        ("You may like Lost in Space because it is a Sci-Fi thriller with a theme similar "
         "to The Jedi.", "lis", ("rotj",)),
        ("You may like Monty Python's Life of Brian because it is a Comedy with a theme "
         "similar to Aladdin; it is similar to Aladdin.", "brian", ("ala",)),
        ("Heat is a film that has a lot of elements of Heat.", "heat", ()),
        ("Heat is an Action film, reimagined and reimagined.", "heat", ()),
    ],
)  # fmt: skip
def test_movie_false_claims_are_rejected(movies, text, target, evidence) -> None:
    assert not _verify(movies, text, target, evidence).ok


@pytest.mark.parametrize(
    "text,target,evidence",
    [
        ("You may like Alpine Down Jacket because it is a Kids Hiking Boots.", "j1", ("b1",)),
        ("Alpine Down Jacket is a Kids Hiking Boots for your next trip.", "j1", ()),
        ("You may like Hydration Running Belt because it is a popular running shoe and "
         "accessories brand.", "h1", ("r1",)),
        ("You may like Mini Bike Pump because it is a Cycling Helmet MIPS.", "p1", ("m1",)),
        ("Polar Fleece Pullover is a popular climbing and cycling outfit.", "f1", ("c1", "m1")),
        ("Polar Fleece Pullover is great for climbing and cycling.", "f1", ("c1", "m1")),
        ("Two-in-One Shell Jacket is a two-in-one shell with a zip-up zip-up.", "s1", ()),
        ("Alpine Down Jacket is a warm jacket for $149.", "j1", ()),
        ("Alpine Down Jacket is a warm jacket made by Patagonia.", "j1", ()),
        ("Fans of Polar Fleece Pullover also bought Alpine Down Jacket.", "j1", ("f1",)),
        ("Alpine Down Jacket comes from the makers of Kids Hiking Boots.", "j1", ("b1",)),
        ("Because you liked Climbing Harness, Alpine Down Jacket is a Jackets pick.", "j1", ("c1",)),
        ("Road Running Shoes is a running shoe from the same brand, Hydration Running Belt.",
         "r1", ("h1",)),
        ("Alpine Down Jacket is a jacket from the brand Patagonia.", "j1", ()),
        ("Road Running Shoes is a running shoe from Hydration Running Belt.", "r1", ("h1",)),
        ("Alpine Down Jacket is a down jacket. It is a Summit.", "j1", ()),
        ("Alpine Down Jacket is a Jackets pick, like a fleece, and a stove.", "j1", ()),
        ("Kids Hiking Boots is a fun and fun-loving brand.", "b1", ()),
        ("Cycling Helmet MIPS is a helmet. It is a Velo 400.", "m1", ()),
        ("Alpine Down Jacket is a great pick for your warm down jacket.", "j1", ()),
    ],
)  # fmt: skip
def test_shop_false_claims_are_rejected(shop, text, target, evidence) -> None:
    plan = item_facts(shop.get(target))
    plan += [f for e in evidence for f in relation_facts(shop.get(target), shop.get(e))]
    v = _verify(shop, text, target, evidence, plan=plan)
    assert not v.ok, v


def test_wording_no_fact_carries_is_rejected(movies, shop) -> None:
    target, other = movies.get("nc"), movies.get("fargo")
    co = item_facts(target) + relation_facts(target, other, co_users=(92, 230))
    true = "No Country for Old Men was liked by 40% of the 230 people who liked Fargo."
    assert _verify(movies, true, "nc", ("fargo",), plan=co).ok
    # the data says liked, not loved
    for text in (
        "You liked Fargo, and No Country for Old Men is a Crime pick. You liked 40% of "
        "the 230 people who liked Fargo.",
        "No Country for Old Men is a Crime pick. The plot summary is not available.",
    ):
        assert not _verify(movies, text, "nc", ("fargo",), plan=co, kind="pitch").ok, text
    loved = true.replace("was liked by", "was loved by")
    v = _verify(movies, loved, "nc", ("fargo",), plan=co)
    assert not v.ok and "loved" in v.problems[0]
    # a year joined to a genre as if it were a kind of film
    plan = item_facts(target)
    text = "No Country for Old Men is a Crime and 2007 pick."
    assert not _verify(movies, text, "nc", plan=plan).ok
    assert _verify(movies, "No Country for Old Men is a Crime and Thriller pick.", "nc",
                   plan=plan).ok  # fmt: skip
    # a category name is neither a noun for one item nor where it comes from
    jacket = item_facts(shop.get("j1"))
    for text in (
        "Alpine Down Jacket is a Jackets.",
        "Alpine Down Jacket is a jacket from Jackets.",
    ):
        v = _verify(shop, text, "j1", plan=jacket)
        assert not v.ok and any("category" in p for p in v.problems), (text, v)
    assert _verify(shop, "Alpine Down Jacket is a Jackets pick made by Summit.", "j1",
                   plan=jacket).ok  # fmt: skip
    # a product is what its name's last word says, with the qualities its data gives
    for target, text in (
        ("p1", "Mini Bike Pump is a bike for your rides."),
        ("j1", "Alpine Down Jacket is a glass jacket for cold days."),
        ("j1", "The Alpine Down Jacket are a luxury item made by Summit."),
        ("j1", "Alpine Down Jacket is a Jackets pick, and the details are accurate."),
    ):
        v = _verify(shop, text, target, plan=item_facts(shop.get(target)))
        assert not v.ok, (text, v)
    assert _verify(shop, "Alpine Down Jacket is a warm down jacket for cold days.", "j1",
                   plan=jacket).ok  # fmt: skip
    same = item_facts(shop.get("r1")) + relation_facts(shop.get("r1"), shop.get("h1"))
    assert _verify(shop, "Road Running Shoes comes from the same brand, Stride, as Hydration "
                   "Running Belt.", "r1", ("h1",), plan=same).ok  # fmt: skip


def test_the_item_is_not_what_its_description_is_about() -> None:
    # a film's description opens with its hero, a product's with what it is
    film = Item(
        "cuf",
        "Courage Under Fire (1996)",
        "A U.S. Army officer, despondent about a deadly mistake he made, investigates "
        "a female chopper commander's worthiness for the Medal of Honor.",
        {"genres": ["Drama", "War"], "year": 1996},
    )
    wanda = Item("fcw", "A Fish Called Wanda (1988)",
                 "In London, four very different people team up to commit an armed robbery, "
                 "then try to doublecross each other; a barrister falls for one of them.",
                 {"genres": ["Comedy"], "year": 1988})  # fmt: skip
    catalog = Catalog([film, wanda])
    for target, text in (
        ("cuf", "Courage Under Fire is a U.S. Army officer, despondent about a deadly "
                "mistake he made."),
        ("cuf", "Courage Under Fire is an Army officer who investigates a commander."),
        ("fcw", "A Fish Called Wanda is a Comedy and a barrister."),
        ("fcw", "A Fish Called Wanda is a comedy and heist show."),
        # a long phrase, cut by its verb: the film is called a commander
        ("cuf", "Courage Under Fire is a despondent decorated army helicopter chopper "
                "commander is investigated."),
    ):  # fmt: skip
        v = _verify(catalog, text, target, plan=item_facts(catalog.get(target)))
        assert not v.ok and "is something it is not" in v.problems[0], (text, v)
    for target, text in (
        ("cuf", "Courage Under Fire is a Drama and War film about an Army officer."),
        ("fcw", "A Fish Called Wanda is a Comedy, and a barrister falls for one of them."),
        ("fcw", "A Fish Called Wanda is a Comedy and a fine pick."),
    ):
        v = _verify(catalog, text, target, plan=item_facts(catalog.get(target)))
        assert v.ok, (text, v)


GEAR = [
    Item("t", "Trail Running Shoes", "Lightweight trail shoes with a grippy lugged outsole.",
         {"category": "Running", "brand": "Stride", "price": 120.0}),
    Item("j", "Alpine Down Jacket", "A warm down jacket with 800-fill down and a hood.",
         {"category": "Jackets", "brand": "Northpeak", "price": 189.0}),
    Item("f", "Fleece Pullover", "A midweight fleece with a half zip.",
         {"category": "Jackets", "brand": "Northpeak", "price": 70.0}),
    Item("s", "Backpacking Stove", "A compact stove that boils a litre of water in three minutes.",
         {"category": "Camping", "brand": "Cascade", "price": 59.0}),
    Item("b", "Hydration Running Belt", "A waist belt that holds two soft flasks for long runs.",
         {"category": "Running", "brand": "Ridgeline", "price": 34.0}),
    Item("fargo", "Fargo (1996)", "A car salesman hires two criminals to kidnap his wife.",
         {"genres": ["Crime", "Drama"], "year": 1996}),
    Item("pulp", "Pulp Fiction (1994)", "A hitman in Los Angeles and his partner take on a job.",
         {"genres": ["Crime", "Drama"], "year": 1994}),
]  # fmt: skip


@pytest.mark.parametrize(
    "text,target,evidence,ok",
    [
        # lists of qualities, features offered, qualities after "and", comparisons
        ("Trail Running Shoes is a lightweight, grippy trail shoe.", "t", (), True),
        ("Fargo is a dark, snowy Crime drama.", "fargo", (), True),
        ("Trail Running Shoes offers a grippy lugged outsole.", "t", (), True),
        ("Backpacking Stove is a Camping pick and compact.", "s", (), True),
        ("Backpacking Stove is a compact stove and boils a litre of water.", "s", (), True),
        ("Alpine Down Jacket is a warm upgrade from Fleece Pullover.", "j", ("f",), True),
        # "and" inside one phrase: its qualities are the item's, or not
        ("Alpine Down Jacket is a warm and light down jacket.", "j", (), True),
        ("Alpine Down Jacket is a warm and fluffy down jacket.", "j", (), False),
        ("Fargo is a dark and snowy Crime drama.", "fargo", (), True),
        ("Alpine Down Jacket is a down jacket and warm.", "j", (), True),
        # aims: the item's words through a light stem, a participle ends the aim
        ("Hydration Running Belt is a waist belt for your long runs, holding two flasks.",
         "b", (), True),
        ("Hydration Running Belt is a great pick for your next run.", "b", (), True),
        ("Alpine Down Jacket is a great choice for your collection.", "j", (), True),
        # false: a film is not its description's hero, an item is not from another
        ("Pulp Fiction is a hitman in Los Angeles.", "pulp", (), False),
        ("Fargo is a Crime film and heist show.", "fargo", (), False),
        ("Alpine Down Jacket is a jacket from Fleece Pullover.", "j", ("f",), False),
        # a hyphenated "-based" is part of the phrase ("based on" ends one)
        ("Fleece Pullover is a fleece-based clothing brand.", "f", (), False),
        ("Fargo is a Crime drama based on a kidnapping.", "fargo", (), False),
        ("Fargo is a Crime drama starring a car salesman.", "fargo", (), True),
        ("Pulp Fiction is a Crime film starring a detective.", "pulp", (), False),
        ("Pulp Fiction is a Crime film based on a classic tale.", "pulp", (), False),
        # a phrase written twice, a title's word inside it
        ("Trail Running Shoes is a trail shoe, a grippy trail shoe, and a grippy trail shoe.",
         "t", (), False),
        # three words twice, a title counted as one word
        ("If you liked Pulp Fiction, Fargo is a Crime drama. If you liked Pulp Fiction, it "
         "is a Crime story.", "fargo", ("pulp",), False),
        # a pitch's later sentence the item's data does not support
        ("Fargo is a Crime drama. You will love the story of a detective who tries to make "
         "a difference.", "fargo", (), False),
        ("Fargo is a Crime drama. A car salesman hires two criminals to kidnap his wife.",
         "fargo", (), True),
        # the reader cast as the story's hero
        ("Fargo is a Crime drama. You're a car salesman in debt.", "fargo", (), False),
        ("Fargo is a Crime drama, if you are a fan of Crime films.", "fargo", (), True),
    ],
)  # fmt: skip
def test_what_an_item_is_reads_like_a_person_would(text, target, evidence, ok) -> None:
    catalog = Catalog(GEAR)
    item = catalog.get(target)
    plan = item_facts(item) + [f for e in evidence for f in relation_facts(item, catalog.get(e))]
    kind = "pitch" if ". " in text else "reason"  # two sentences: a pitch
    v = _verify(catalog, text, target, evidence, plan=plan, kind=kind)
    assert v.ok is ok, v


def test_a_reason_prompt_takes_the_text_only_when_it_says_what_the_item_is() -> None:
    film = Item(
        "cuf",
        "Courage Under Fire (1996)",
        "A U.S. Army officer, despondent about a deadly mistake, investigates a case.",
        {"genres": ["Drama", "War"]},
    )
    pack = Item("d1", "Daypack 22L", "A 22-litre pack with a rain cover.",
                {"category": "Hiking"})  # fmt: skip
    catalog = Catalog([film, pack])
    gen = ContentGenerator("template", catalog=catalog)

    def prompt(target: str, kind: str) -> str:
        return gen.prompt(_request(catalog, target), kind)[-1]["content"]

    assert "despondent" not in prompt("cuf", "reason")
    assert "despondent" in prompt("cuf", "pitch")
    assert "rain cover" in prompt("d1", "reason")


def test_an_aim_of_the_user_needs_a_fact(shop) -> None:
    plan = item_facts(shop.get("h1"))
    for text in (
        "Hydration Running Belt is a great choice for your next adventure.",
        "Hydration Running Belt is a belt that suits your plot summary well, and a great "
        "choice for your plot summary.",
    ):
        v = _verify(shop, text, "h1", plan=plan)
        assert not v.ok and any("for your" in p for p in v.problems), (text, v)
    for text in (
        "Hydration Running Belt is a belt for your long runs.",  # its own text
        "Hydration Running Belt is a Running pick for your runs.",
    ):
        assert _verify(shop, text, "h1", plan=plan).ok, text
    # the user's own words ground an aim too
    v = _verify(shop, "Hydration Running Belt is a belt for your marathon training.", "h1",
                plan=plan, query="marathon training")  # fmt: skip
    assert v.ok, v


def test_fact_labels_and_hyphenated_tags_are_no_facts() -> None:
    article = Item("n1", "Drought forces farmers to switch crops", "Farmers plant sorghum.",
                   {"section": "Climate", "tags": ["drought", "farming"]})  # fmt: skip
    catalog = Catalog([article])
    plan = item_facts(article)
    for text in (
        "Drought forces farmers to switch crops is a section of Climate.",  # a label
        "Drought forces farmers to switch crops is a section Climate.",
        "Drought forces farmers to switch crops is a Climate and Climate-focused story.",
    ):
        assert not _verify(catalog, text, "n1", plan=plan).ok, text
    ok = "Drought forces farmers to switch crops is a Climate story about farming."
    assert _verify(catalog, ok, "n1", plan=plan).ok


def test_a_template_calls_an_article_a_story_of_its_section() -> None:
    articles = [
        Item(f"n{i}", title, "", {"section": section, "tags": tags})
        for i, (title, section, tags) in enumerate([
            ("Drought forces farmers to switch crops", "Climate", ["drought", "farming"]),
            ("Inflation eases for a third month", "Economy", ["inflation", "prices"]),
        ])
    ]  # fmt: skip
    pipe = _pipeline(articles, [Event("r1", "n1", "click", timestamp=1.0)])
    [rec] = pipe.recommend("r2", k=1, generate=True)  # an unknown reader: popular items
    assert rec.item_id == "n1" and rec.generated.source == "template"
    assert "an Economy story" in rec.text and "pick" not in rec.text, rec.text
    # a model writing about an article is started on its section, by construction true
    gen = ContentGenerator(_PrefillChat(lambda c: "x"), catalog=pipe.catalog)
    opening = gen.prompt(_request(pipe.catalog, "n0", ("n1",)))[-1]["content"]
    assert opening.endswith("Drought forces farmers to switch crops is a Climate story"), opening


NEWS = [
    Item("s1", "Young cyclist wins the mountain stage", "A rider of 21 won the stage.",
         {"section": "Sports", "tags": ["cycling"]}),
    Item("s2", "Marathon record falls on a cold morning", "A course record fell.",
         {"section": "Sports", "tags": ["running"]}),
    Item("s3", "Underdogs reach the cup final", "A second division side won on penalties.",
         {"section": "Sports", "tags": ["football"]}),
    Item("h1", "Walking ten minutes a day lowers heart risk",
         "A study of 90,000 adults found that brisk walking lowered heart risk. People who "
         "took up running or cycling were counted apart.", {"section": "Health", "tags": ["walking", "heart"]}),
]  # fmt: skip


def test_a_taste_is_the_kind_most_liked_items_share_and_the_target_lacks() -> None:
    s1, s2, s3, h1 = NEWS
    [fact] = taste_facts(h1, [s1, s2, h1])
    assert fact.kind == "taste" and fact.values == ("Sports", "2", "3")
    assert fact.text == "Most of what you liked is Sports (2 of 3); this is not."
    assert taste_facts(s3, [s1, s2]) == []  # its own kind: a shared attribute says so
    assert taste_facts(h1, [s1]) == []  # one item is no pattern
    assert taste_facts(h1, [s1, h1, Item("x", "X", "", {"section": "Economy"})]) == []  # no half
    assert taste_facts(Item("y", "Y", "", {}), [s1, s2]) == []  # no kind to compare


def test_an_unrelated_item_is_explained_by_the_users_usual_kind() -> None:
    events = [Event("r", "s1", "click", timestamp=1.0), Event("r", "s2", "click", timestamp=2.0)]
    events += [Event(f"o{n}", "h1", "click", timestamp=3.0 + n) for n in range(3)]
    events.append(Event("r", None, "query", text="running and cycling", timestamp=9.0))
    pipe = _pipeline(NEWS, events)
    [rec] = [r for r in pipe.recommend("r", k=2, generate=False) if r.item_id == "h1"]
    plan = rec.explanation.plan
    assert rec.explanation.evidence_item_ids == ()
    assert [f.values for f in plan if f.kind == "taste"] == [("Sports", "2", "2")]
    # the words of what the reader said they follow that the article holds
    stated = [f for f in plan if f.provenance == "profile:stated_preferences"]
    assert [f.values for f in stated] == [("running", "cycling")]
    gen, item = pipe.generator, pipe.catalog.get("h1")
    request = ReasonRequest("r", item, plan=plan)
    text = gen.template_text(request, "reason")
    assert "matches your interest in running and cycling" in text, text
    assert gen.verify(text, request, "reason").ok, text
    # without the stated words, the contrast with the reader's usual kind
    request = ReasonRequest("r", item, plan=tuple(f for f in plan if f not in stated))
    texts = {gen.template_text(request.__class__(uid, item, plan=request.plan), "reason")
             for uid in ("a", "b", "c", "d", "e", "f")}  # fmt: skip
    for text in texts:
        assert "a change from your usual Sports stories" in text, text
        assert gen.verify(text, request, "reason").ok, text
    # a model is given the words a text may use for it, and a prefilling one starts on them
    prompt = ContentGenerator(FunctionChat(lambda c: "x"), catalog=pipe.catalog).prompt(request)
    assert '- "A change from your usual Sports stories."' in prompt[-1]["content"]
    # a summary opens with the sentence about the reader, then the article's own
    summary = gen.template_text(request, "summary")
    assert "change from your usual Sports stories" in summary.split(". ")[0], summary
    assert "brisk walking lowered heart risk" in summary
    assert gen.verify(summary, request, "summary").ok, summary
    made_up = "You will love this one. " + summary.split(". ", 1)[1]
    assert not gen.verify(made_up, request, "summary").ok  # only the plan's frame is exempt
    # a headline with no room for the phrase says it in two words
    headline = gen.template_text(request, "headline")
    assert headline == "Beyond Sports: Walking ten minutes a day lowers heart risk", headline
    assert gen.verify(headline, request, "headline").ok, headline
    wrong = "Beyond Football: Walking ten minutes a day lowers heart risk"
    assert not gen.verify(wrong, request, "headline").ok  # football is nothing of the plan's
    opening = ContentGenerator(_PrefillChat(lambda c: "x"), catalog=pipe.catalog).prompt(request)
    assert opening[-1]["content"] == (
        "Walking ten minutes a day lowers heart risk is a Health story, "
        "a change from your usual Sports stories"
    )
    # the user's kind is never the item's
    for wrong in (
        "Walking ten minutes a day lowers heart risk is a Sports story.",
        "Walking ten minutes a day lowers heart risk is your usual Sports story.",
        # the phrase allows the kind at its own words only
        "Walking ten minutes a day lowers heart risk is a Sports story, a change from your "
        "usual Sports stories.",
        # said twice: a small model repeating its prefilled opening
        "A change from your usual Sports picks: Walking ten minutes a day lowers heart risk "
        "is a change from your usual Sports picks.",
        "Walking ten minutes a day lowers heart risk, a change from your usual Sports picks, "
        "is a change from the usual.",
        # cut off at the kind: only a headline may end the phrase there
        "Walking ten minutes a day lowers heart risk is a change from your usual Sports, "
        "with a study.",
    ):
        assert not gen.verify(wrong, request, "reason").ok, wrong
    short = "Walking ten minutes: a change from your usual Sports"
    assert gen.verify(short, request, "headline").ok
    # a model's answer that cuts the phrase at the kind is made whole, then checked
    cut = "Walking ten minutes a day lowers heart risk is a change from your usual Sports."
    model = ContentGenerator(FunctionChat(lambda c: cut), catalog=pipe.catalog)
    [written] = model.generate([request])
    assert written.source == "llm", written
    assert written.text == cut.replace("Sports.", "Sports stories."), written
    once = "Walking ten minutes a day lowers heart risk is a change from your usual Sports picks."
    assert gen.verify(once, request, "reason").ok


def test_odd_usual_kinds_and_stated_preferences() -> None:
    films = [
        Item("a", "Alien (1979)", "", {"genres": ["Sci-Fi", "Horror"]}),
        Item("b", "Blade Runner (1982)", "", {"genres": ["Sci-Fi", "Film-Noir"]}),
        Item("h", "Heat (1995)", "A crew of robbers.", {"genres": ["Crime"]}),
        Item("x", "Scream (1996)", "A horror film about a masked killer.", {"genres": ["Horror"]}),
    ]
    catalog = Catalog(films)
    heat = catalog.get("h")
    [taste] = taste_facts(heat, [catalog.get("a"), catalog.get("b")])
    assert taste.values[0] == "Sci-Fi"
    gen = ContentGenerator("template", catalog=catalog)
    request = ReasonRequest("u", heat, plan=(*item_facts(heat), taste))
    text = gen.template_text(request, "reason")
    assert "your usual Sci-Fi picks" in text and gen.verify(text, request).ok, text
    # a tie is no "most of": one Sci-Fi and one Crime liked item of two
    assert taste_facts(catalog.get("x"), [catalog.get("a"), heat]) == []
    # a preference stated against a word is no interest in it
    from llmrec.generation import context_facts

    scream = catalog.get("x")
    for said, want in (("no horror please", []), ("I love horror", [("horror",)])):
        facts = context_facts(scream, stated=[said])
        assert [f.values for f in facts if f.kind == "preference"] == want, said
    # facts without values (a caller's own plan) are skipped, not a crash
    bare = (*item_facts(heat), Fact("taste", "x", "request", (), None, "genres"))
    for kind in ("reason", "pitch", "summary", "headline"):
        out = gen.template_text(ReasonRequest("u", heat, plan=bare), kind)
        assert ("Heat" if kind != "summary" else "robbers") in out, (kind, out)


def test_a_name_after_a_role_and_a_comma_is_not_listed_in_it() -> None:
    phenomenon = Item("p", "Phenomenon (1996)", "A man gains strange powers.",
                      {"directors": ["Jon Turteltaub"], "cast": ["John Travolta"]})  # fmt: skip
    catalog = Catalog([phenomenon, Item("o", "Other (1990)", "", {})])
    text = "Directed by Jon Turteltaub, Phenomenon is a drama starring John Travolta."
    problems = verify_text(text, target=phenomenon, catalog=catalog).problems
    assert not any("role" in p for p in problems), problems


def test_evidence_is_only_what_the_user_liked() -> None:
    # "me" viewed Fargo and gave Heat 3 stars: neither is "You liked"; No Country for
    # Old Men shares Fargo's director, yet Fargo is no evidence of a liking.
    events = [
        Event("me", "fargo", "view", timestamp=1.0),
        Event("me", "heat", "rate", value=3, timestamp=2.0),
    ]
    for n in range(4):  # others who liked Heat and Fargo and No Country for Old Men
        for t, item in enumerate(("heat", "fargo", "nc")):
            events.append(Event(f"p{n}", item, "like", timestamp=10.0 + 3 * n + t))
    events.append(Event("p9", "heat", "view", timestamp=40.0))  # viewed only: not a liker
    pipe = _pipeline(MOVIES, events)
    [rec] = [r for r in pipe.recommend("me", k=len(MOVIES), generate=False) if r.item_id == "nc"]
    assert rec.explanation.evidence_item_ids == ()
    assert not [f for f in rec.explanation.plan if f.kind in ("history", "co_consumption")]
    pipe.observe(Event("me", "heat", "rate", value=5, timestamp=50.0))
    [rec] = [r for r in pipe.recommend("me", k=len(MOVIES), generate=False) if r.item_id == "nc"]
    assert rec.explanation.evidence_item_ids == ("heat",)
    co = [f.text for f in rec.explanation.plan if f.kind == "co_consumption"]
    # five people liked Heat (p0-p3 and me; p9 only viewed it), four of them No Country
    assert co == ["Liked by 80% of the 5 people who liked Heat."]


def test_relation_claims_pass_only_with_the_relation(movies) -> None:
    target, other = movies.get("nc"), movies.get("fargo")
    shared = item_facts(target) + relation_facts(target, other)
    text = "No Country for Old Men is from the director of Fargo, Joel Coen."
    assert _verify(movies, text, "nc", ("fargo",), plan=shared).ok
    assert not _verify(movies, "Fans of Fargo also liked No Country for Old Men.", "nc",
                       ("fargo",), plan=shared).ok  # fmt: skip
    co = shared + relation_facts(target, other, co_users=(92, 230))
    assert _verify(movies, "Fans of Fargo also liked No Country for Old Men.", "nc", ("fargo",),
                   plan=co).ok  # fmt: skip
    text = "No Country for Old Men was liked by 40% of the 230 people who liked Fargo."
    assert _verify(movies, text, "nc", ("fargo",), plan=co).ok
    assert not _verify(movies, text.replace("40%", "60%"), "nc", ("fargo",), plan=co).ok
    # Heat shares no director with No Country for Old Men.
    heat = item_facts(target) + relation_facts(target, movies.get("heat"), co_users=(5, 50))
    text = "No Country for Old Men is from the director of Heat."
    assert not _verify(movies, text, "nc", ("heat",), plan=heat).ok


def test_true_shop_texts_pass(shop) -> None:
    target, other = shop.get("s1"), shop.get("f1")
    plan = item_facts(target) + relation_facts(target, other, co_users=(9, 22))
    for text in (
        "Two-in-One Shell Jacket is a shell jacket from Summit for $240.",
        "Liked by 41% of the 22 people who liked Polar Fleece Pullover, the Two-in-One Shell "
        "Jacket is made by Summit too.",
    ):
        v = _verify(shop, text, "s1", ("f1",), plan=plan, kind="reason")
        assert v.ok, (text, v)


def test_what_a_product_is_may_come_from_its_name_head_or_its_text() -> None:
    gear = Catalog([
        Item("m", "Cycling Helmet MIPS", "A road helmet with a MIPS liner and 18 vents.",
             {"category": "Cycling", "brand": "Velo", "price": 119.0}),
        Item("h", "Headlamp 400", "A 400-lumen headlamp with a red light mode.",
             {"category": "Accessories", "brand": "Summit", "price": 49.0}),
        Item("r", "Rain Shell Jacket", "A two-layer waterproof shell with a packable hood.",
             {"category": "Apparel", "brand": "Ridgeline", "price": 159.0}),
        Item("k", "Kettlebell 12 kg", "A cast iron kettlebell.", {"category": "Fitness", "price": 45.0}),
        Item("p", "Mini Bike Pump", "A small pump that fits in a jersey pocket.",
             {"category": "Cycling", "brand": "Velo", "price": 25.0}),
    ])  # fmt: skip
    true = [
        ("m", "Cycling Helmet MIPS is a road helmet with a MIPS liner and 18 vents."),  # code
        ("h", "Headlamp 400 is a 400-lumen headlamp with a red light mode."),  # figure
        ("h", "Headlamp 400 is a handy accessory."),  # the singular of its category
        ("r", "Rain Shell Jacket is a two-layer waterproof shell."),  # its text says shell
        ("k", "Kettlebell 12 kg is a kettlebell for home workouts."),  # figure and unit
    ]
    for item_id, text in true:
        target = gear.get(item_id)
        v = verify_text(text, tuple(item_facts(target)), target=target, catalog=gear)
        assert v.ok, (text, v.problems)
    for item_id, text in [("p", "Mini Bike Pump is a bike for your rides."),
                          ("h", "Headlamp 400 is a light set.")]:  # fmt: skip
        target = gear.get(item_id)
        assert not verify_text(text, tuple(item_facts(target)), target=target, catalog=gear).ok


# --------------------------------------------------------------------------- kinds


def _request(catalog: Catalog, target: str, evidence=()) -> ReasonRequest:
    item = catalog.get(target)
    others = tuple(catalog.get(e) for e in evidence)
    plan = item_facts(item)
    for o in others:
        plan += relation_facts(item, o, co_users=(6, 20))
    return ReasonRequest("u", item, others, signals={"co_occurrence": 1.0}, plan=tuple(plan))


def _title_of(conversation) -> str:
    user = conversation[-1]["content"]
    return user.split('Item: "', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("kind", ["reason", "pitch", "summary", "headline"])
def test_each_kind_streams_completely_within_its_budget(shop, kind) -> None:
    def slow(conversation):
        time.sleep(0.05)
        return f"{_title_of(conversation)} is a pick."

    gen = ContentGenerator(FunctionChat(slow), catalog=shop, cache_size=0)
    requests = [_request(shop, i, ("f1",)) for i in ("j1", "s1", "b1", "h1", "p1", "m1")]
    started = time.perf_counter()
    seen = dict(gen.stream(requests, budget_s=0.2, kind=kind))
    assert time.perf_counter() - started < 1.5
    assert sorted(seen) == list(range(len(requests)))
    assert any(t.fallback_reason == "latency budget" for t in seen.values())
    for index, text in seen.items():
        assert gen.verify(text.text, requests[index], kind=kind).ok, text


def test_a_pitch_is_two_or_three_verified_sentences(shop) -> None:
    good = (
        "The Alpine Down Jacket is a warm down jacket for cold alpine days. "
        "Liked by 30% of the 20 people who liked Polar Fleece Pullover, it is made by Summit."
    )
    gen = ContentGenerator(FunctionChat(lambda c: good), catalog=shop)
    [out] = gen.generate([_request(shop, "j1", ("f1",))], kind="pitch")
    assert out.source == "llm" and out.text == good
    # one true sentence: the pitch goes on with a fact of the plan, not a new answer
    calls = []
    gen = ContentGenerator(
        FunctionChat(lambda c: calls.append(c) or "Alpine Down Jacket is warm."), catalog=shop
    )
    [out] = gen.generate([_request(shop, "j1", ("f1",))], kind="pitch")
    assert out.source == "llm" and out.retry_reason is None and len(calls) == 1
    assert out.text == "Alpine Down Jacket is warm. Made by Summit.", out.text
    # a later false sentence is dropped; the true ones stay the model's, without a retry
    calls = []
    answer = "Alpine Down Jacket is warm. It is a Kids Hiking Boots. It is made by Summit."
    gen = ContentGenerator(FunctionChat(lambda c: calls.append(c) or answer), catalog=shop)
    [out] = gen.generate([_request(shop, "j1", ("f1",))], kind="pitch")
    assert out.source == "llm" and len(calls) == 1, out
    assert out.text == "Alpine Down Jacket is warm. It is made by Summit.", out.text
    # a false first sentence is not mended
    answer = "Alpine Down Jacket is a Kids Hiking Boots. It is made by Summit."
    gen = ContentGenerator(FunctionChat(lambda c: answer), catalog=shop)
    [out] = gen.generate([_request(shop, "j1", ("f1",))], kind="pitch")
    assert out.source == "template", out
    # one false sentence: asked again, then the template
    gen = ContentGenerator(
        FunctionChat(lambda c: "Alpine Down Jacket is a Kids Hiking Boots."), catalog=shop
    )
    [out] = gen.generate([_request(shop, "j1", ("f1",))], kind="pitch")
    assert out.source == "template" and "a pitch has two or three" in out.fallback_reason
    assert 2 <= out.text.count(". ") + 1 <= 3 and "Alpine Down Jacket" in out.text


def test_a_headline_is_short_and_names_the_item(shop) -> None:
    gen = ContentGenerator("template", catalog=shop)
    [out] = gen.generate([_request(shop, "s1", ("f1",))], kind="headline")
    assert len(out.text) <= HEADLINE_CHARS and "Two-in-One Shell Jacket" in out.text
    long = "Two-in-One Shell Jacket: " + "warm " * 20
    assert not gen.verify(long, _request(shop, "s1"), kind="headline").ok
    # The bare name says nothing of the item or the reader.
    bare = gen.verify("Two-in-One Shell Jacket", _request(shop, "s1"), kind="headline")
    assert not bare.ok and "more than the item's name" in "; ".join(bare.problems)
    assert gen.verify(
        "Two-in-One Shell Jacket with a zip-up liner", _request(shop, "s1"), kind="headline"
    ).ok


def test_two_readers_of_one_long_title_get_headlines_naming_their_own_history() -> None:
    news = Catalog(
        [
            Item(
                "n1",
                "Marathon record falls on a cold morning in the city",
                "Runners.",
                {"section": "Sports"},
            ),  # fmt: skip
            Item("h1", "Cyclist wins the stage", "Cycling.", {"section": "Sports"}),
            Item(
                "h2",
                "Underdogs reach the cup final after penalty shoot-out",
                "Football.",
                {"section": "Sports"},
            ),  # fmt: skip
        ]
    )
    gen = ContentGenerator("template", catalog=news)
    texts = []
    for history in ("h1", "h2"):
        item, other = news.get("n1"), news.get(history)
        plan = tuple(item_facts(item) + relation_facts(item, other))
        request = ReasonRequest("u", item, (other,), plan=plan)
        [out] = gen.generate([request], kind="headline")
        assert len(out.text) <= HEADLINE_CHARS and out.source == "template"
        assert gen.verify(out.text, request, kind="headline").ok, out.text
        texts.append(out.text)
    # Leading clauses stand in for long titles, so the reader's own item fits.
    assert texts == [
        "Marathon record falls: Sports, as in Cyclist wins the stage",
        "Marathon record falls, like Underdogs reach the cup final",
    ]


def test_a_headline_says_like_only_of_items_alike_by_more_than_one_genre() -> None:
    films = Catalog(
        [
            Item(
                "f1",
                "The Long Adventures of a Toy Cowboy Hero",
                "A toy cowboy.",
                {"genres": ["Animation", "Comedy"]},
            ),  # fmt: skip
            Item("f2", "Liar Liar", "A lawyer.", {"genres": ["Comedy"]}),
            Item("f3", "Aladdin", "A street thief.", {"genres": ["Animation", "Comedy"]}),
        ]
    )
    gen = ContentGenerator("template", catalog=films)
    for other, alike in (("f2", False), ("f3", True)):
        item, history = films.get("f1"), films.get(other)
        plan = tuple(item_facts(item) + relation_facts(item, history))
        request = ReasonRequest("u", item, (history,), plan=plan)
        headline = gen.template_text(request, "headline")
        # ": Comedy, as in ..." does not fit 60 characters beside this title; ", like" does
        assert ("The Long Adventures of a Toy Cowboy Hero, like" in headline) is alike, headline
        assert gen.verify(headline, request, kind="headline").ok, headline


def test_what_the_user_liked_must_be_one_of_their_items() -> None:
    films = Catalog(
        [
            Item(
                "f1",
                "Primal Fear (1996)",
                "An altar boy is accused of murdering a priest.",
                {"genres": ["Drama", "Thriller"]},
            ),  # fmt: skip
            Item("f2", "Fugitive, The (1993)", "A doctor escapes.", {"genres": ["Thriller"]}),
            Item("f3", "Mr. Holland's Opus (1995)", "A music teacher.", {"genres": ["Drama"]}),
        ]
    )
    gen = ContentGenerator("template", catalog=films)
    item, history = films.get("f1"), (films.get("f2"), films.get("f3"))
    plan = tuple(item_facts(item) + [f for h in history for f in relation_facts(item, h)])
    request = ReasonRequest("u", item, history, plan=plan)
    for text in (
        "You liked the altar boy, so Primal Fear is a Thriller for you.",
        "Since you enjoyed the lawyer, Primal Fear is a Thriller.",
    ):
        check = gen.verify(text, request, kind="reason")
        assert not check.ok and "none of their items" in "; ".join(check.problems), text
    for text in (
        "You liked The Fugitive, and Primal Fear is a Thriller about an altar boy.",
        "Since you enjoyed Mr. Holland's Opus, Primal Fear is a Drama for you.",
        "You liked thrillers, and Primal Fear is one.",
    ):
        check = gen.verify(text, request, kind="reason")
        assert "none of their items" not in "; ".join(check.problems), (text, check.problems)


def test_title_clauses_are_leading_clauses_that_still_name_the_item() -> None:
    assert title_clauses("Marathon record falls on a cold morning") == [
        "Marathon record falls on a cold morning",
        "Marathon record falls",
    ]
    assert title_clauses("Hospital cuts waiting times with evening clinics, study finds") == [
        "Hospital cuts waiting times with evening clinics, study finds",
        "Hospital cuts waiting times with evening clinics",
        "Hospital cuts waiting times",
    ]
    assert title_clauses("Godfather, The (1972)") == ["The Godfather"]
    assert title_clauses("Young cyclist wins the mountain stage") == [
        "Young cyclist wins the mountain stage"
    ]


ARTICLE = (
    "The city council approved a new bike lane network on Tuesday. The plan adds forty "
    "kilometres of protected lanes by 2026. Cycling groups welcomed the vote. Some shop "
    "owners worried about parking. The mayor said buses will also get priority signals."
)


def test_a_summary_is_supported_by_the_article_and_follows_the_user() -> None:
    news = Catalog([Item("n1", "Council backs bike lanes", ARTICLE, {"tags": ["cycling"]})])
    item = news.get("n1")
    request = ReasonRequest("u", item, matched_tags=("cycling",))
    gen = ContentGenerator("template", catalog=news)
    [out] = gen.generate([request], kind="summary")
    assert out.text and all(s.strip(". ") in ARTICLE for s in out.text.split(". "))
    assert "Cycling groups welcomed the vote" in out.text
    assert gen.verify(out.text, request, kind="summary").ok
    invented = "The council banned all cars from the centre. Cycling groups welcomed the vote."
    assert not gen.verify(invented, request, kind="summary").ok
    # two adjacent sentences condensed: supported; two far apart fused: not
    condensed = "The council approved bike lanes, forty kilometres of protected lanes by 2026."
    assert gen.verify(condensed, request, kind="summary").ok
    swapped = "Cycling groups rejected the vote."  # one word of four changed
    assert not gen.verify(swapped, request, kind="summary").ok
    # its subject changed, every other word the article's
    subject = "Planners approved a new bike lane network of forty kilometres on Tuesday."
    assert not gen.verify(subject, request, kind="summary").ok
    fused = "Shop owners welcomed the forty kilometres of lanes."
    v = gen.verify(fused, request, kind="summary")
    assert not v.ok and "does not support" in v.problems[0], v


def test_a_summary_template_does_not_repeat_the_articles_phrases() -> None:
    text = (
        "Energy prices dropped while food prices rose more slowly. Core inflation, which "
        "leaves out food and energy, stayed at 3.5 percent. Households have faced higher "
        "prices for food and energy over the past two years. Wages rose by 4 percent."
    )
    news = Catalog([Item("e", "Inflation eases for a third month", text, {"tags": ["prices"]})])
    request = ReasonRequest("u", news.get("e"), query="food energy prices")
    [out] = ContentGenerator("template", catalog=news).generate([request], kind="summary")
    assert out.text.count("food and energy") == 1, out.text
    assert len(out.text.split(". ")) >= 2 and all(
        s.strip(". ") in text for s in out.text.split(". ")
    )


def test_a_summary_prompt_shows_the_sentences_this_reader_follows() -> None:
    extra = (
        " Parking fees near the station will rise in May. Parking spaces on Main Street go."
        " Buses on the ring road get a lane of their own. Bus drivers were consulted first."
    )
    news = Catalog([Item("n1", "Council backs bike lanes", ARTICLE + extra, {"tags": ["city"]})])
    gen = ContentGenerator(FunctionChat(lambda c: "x"), catalog=news)

    def shown(query: str) -> str:
        request = ReasonRequest("u", news.get("n1"), query=query)
        user = gen.prompt(request, kind="summary")[-1]["content"]
        return user.split('Article: "', 1)[1].split('"', 1)[0]

    drivers, buses = shown("parking"), shown("buses bus")
    assert "Parking fees" in drivers and "Parking spaces" in drivers
    assert "Bus drivers" in buses and "Bus drivers" not in drivers
    assert drivers != buses and len(drivers.split(". ")) <= 6


def test_digest_introduces_the_list(shop) -> None:
    gen = ContentGenerator("template", catalog=shop)
    requests = [_request(shop, "j1", ("f1",)), _request(shop, "s1", ("f1",))]
    out = gen.digest(requests)
    assert "Alpine Down Jacket" in out.text and "Polar Fleece Pullover" in out.text
    line = "Your picks start with the Alpine Down Jacket and the Two-in-One Shell Jacket."
    gen = ContentGenerator(FunctionChat(lambda c: line), catalog=shop)
    assert gen.digest(requests).text == line
    bad = ContentGenerator(FunctionChat(lambda c: "Try the Kids Hiking Boots today."), catalog=shop)
    out = bad.digest(requests)
    assert out.source == "template" and "Kids Hiking Boots" in out.fallback_reason
    # One listed item described at length is no introduction to the list.
    one = "Alpine Down Jacket, a warm jacket for cold days on the mountain."
    out = ContentGenerator(FunctionChat(lambda c: one), catalog=shop).digest(requests)
    assert out.source == "template" and "not the list" in out.fallback_reason
    # A list naming one of its items twice ("..., Two-in-One Shell Jacket and Alpine Down
    # Jacket.") is no introduction either.
    twice = "Alpine Down Jacket, Two-in-One Shell Jacket and Alpine Down Jacket."
    out = ContentGenerator(FunctionChat(lambda c: twice), catalog=shop).digest(requests)
    assert out.source == "template" and "twice" in out.fallback_reason
    with pytest.raises(InvalidInputError):
        gen.digest([])


def test_template_co_consumption_reasons_and_digests_vary_and_pass(movies, shop) -> None:
    gen = ContentGenerator("template", catalog=movies)
    texts = []
    for target in ("nc", "heat", "sbm", "ll", "lis", "brian", "rotj", "wok", "ala"):
        request = _request(movies, target, ("fargo",))
        text = gen.template_text(request)
        assert gen.verify(text, request).ok, text
        texts.append(text)
    assert len({" ".join(t.split()[:3]) for t in texts}) >= 4, texts
    shops = ContentGenerator("template", catalog=shop)
    ids = ["j1", "s1", "b1", "h1", "p1", "m1", "c1", "r1"]
    lines = {
        shops.digest([_request(shop, a, ("f1",)), _request(shop, b, ("f1",))]).text.split()[0]
        for a, b in zip(ids, ids[1:])
    }
    assert len(lines) >= 2, lines


def test_pipeline_content_and_digest() -> None:
    events = [Event("me", "f1", "like", timestamp=1.0), Event("me", "c1", "like", timestamp=2.0)]
    pipe = _pipeline(SHOP, events)
    for content in ("reason", "pitch", "summary", "headline"):
        recs = pipe.recommend("me", k=3, content=content)
        assert all(r.generated is not None and r.text for r in recs)
        streamed = list(pipe.recommend_stream("me", k=3, content=content))
        assert len(streamed) == 3
    assert all(len(r.text) <= HEADLINE_CHARS for r in recs)
    [batch] = pipe.recommend_batch(["me"], k=2, content="pitch")
    assert all(2 <= len(r.text.split(". ")) <= 3 for r in batch)

    async def collect():
        return [r async for r in pipe.arecommend_stream("me", k=2, content="headline")]

    import asyncio

    assert all(len(r.text) <= HEADLINE_CHARS for r in asyncio.run(collect()))
    digest = pipe.digest("me", recs)
    assert digest.text and any(pipe.catalog.get(r.item_id).title in digest.text for r in recs)
    with pytest.raises(InvalidInputError, match="content"):
        pipe.recommend("me", k=3, content="poem")
    with pytest.raises(InvalidInputError):
        pipe.digest("me", [])


# --------------------------------------------------------------------------- realization


def test_figures_of_one_relation_are_not_moved_onto_another_item(movies) -> None:
    target = movies.get("nc")
    plan = item_facts(target)
    plan += relation_facts(target, movies.get("fargo"), co_users=(92, 230))
    plan += relation_facts(target, movies.get("heat"), co_users=(30, 100))
    evidence = ("fargo", "heat")
    good = "No Country for Old Men is a Crime pick, liked by 40% of the 230 people who liked Fargo."
    assert _verify(movies, good, "nc", evidence, plan=plan).ok
    # 30% and 100 are Heat's figures, written as if they were Fargo's.
    moved = "No Country for Old Men is a Crime pick: 30% of the 100 people who liked Fargo."
    v = _verify(movies, moved, "nc", evidence, plan=plan)
    assert not v.ok and "not its figure" in "; ".join(v.problems), v
    # The item's own year next to a title is not a moved figure.
    year = "If you liked Heat, No Country for Old Men is a 2007 Crime pick."
    assert _verify(movies, year, "nc", evidence, plan=plan).ok


def test_a_figure_after_liked_by_must_be_a_share_of_people(shop) -> None:
    target = shop.get("r1")
    plan = item_facts(target) + relation_facts(target, shop.get("h1"), co_users=(6, 10))
    good = (
        "Road Running Shoes is a Running pick liked by 60% of the 10 people who liked the "
        "Hydration Running Belt."
    )
    assert _verify(shop, good, "r1", ("h1",), plan=plan).ok
    # 120 is the shoes' price, pasted where a count of people goes.
    pasted = "Road Running Shoes is a Running pick, liked by 120 runners."
    v = _verify(shop, pasted, "r1", ("h1",), plan=plan)
    assert not v.ok and "liked by 120" in "; ".join(v.problems), v


def test_a_fact_pasted_into_a_sentence_is_rejected(shop) -> None:
    target = shop.get("r1")
    plan = item_facts(target) + [
        Fact("preference", "Matches your interest in running.", "user:tags", ("running",))
    ]
    pasted = "Road Running Shoes is a running shoe, Matches your interest in running."
    v = _verify(shop, pasted, "r1", plan=plan)
    assert not v.ok and "pastes a fact" in "; ".join(v.problems), v
    assert _verify(shop, "Road Running Shoes matches your interest in running.", "r1", plan=plan).ok
    # A name after a comma is no pasted fact.
    made = "Road Running Shoes is a Running pick, made by Stride."
    assert _verify(shop, made, "r1", plan=plan).ok


def test_a_statements_wording_is_no_name(shop) -> None:
    """Capitalized mid-sentence, a word of a plan statement ("Matches") is no name: only
    names -- titles, tags, attribute values, the item's text -- are."""
    plan = item_facts(shop.get("r1")) + [
        Fact("preference", "Matches your interest in running.", "user:tags", ("running",))
    ]
    v = _verify(
        shop, "Road Running Shoes is a Running pick that Matches your plans.", "r1", plan=plan
    )
    assert not v.ok and "names something not in the evidence: Matches" in v.problems, v
    assert _verify(shop, "Road Running Shoes is a Running pick by Stride.", "r1", plan=plan).ok


def test_the_item_is_not_its_own_kind(shop) -> None:
    plan = item_facts(shop.get("c1"))
    v = _verify(shop, "Climbing Harness is a Climbing Harness for sport climbing.", "c1", plan=plan)
    assert not v.ok and "is itself" in "; ".join(v.problems), v
    v = _verify(shop, "Climbing Harness is a Climbing Harness, made by Rockit.", "c1", plan=plan)
    assert not v.ok and "is itself" in "; ".join(v.problems), v
    assert _verify(shop, "Climbing Harness is a harness for sport climbing.", "c1", plan=plan).ok


def test_a_title_between_two_words_is_no_repeat(movies) -> None:
    target = movies.get("nc")
    plan = item_facts(target) + relation_facts(target, movies.get("fargo"), co_users=(92, 230))
    text = (
        "If you liked Fargo, No Country for Old Men is a Crime pick: 40% of the 230 people "
        "who liked Fargo liked it too."
    )
    assert _verify(movies, text, "nc", ("fargo",), plan=plan).ok
    text = "No Country for Old Men is a Crime pick liked by 40% of the 230 people who liked Fargo."
    assert _verify(movies, text, "nc", ("fargo",), plan=plan).ok  # "pick liked by": no identity


def test_every_opening_passes_and_the_target_is_never_liked_already(movies) -> None:
    from llmrec.generation.prompts import OPENINGS

    target = movies.get("nc")
    plan = item_facts(target) + relation_facts(target, movies.get("fargo"), co_users=(92, 230))
    for pattern, _ in OPENINGS:
        # "After Fargo, which you liked, No Country ...": the clause is about Fargo
        opening = pattern.format(item="No Country for Old Men", other="Fargo")
        v = _verify(movies, f"{opening} a Crime and Thriller film.", "nc", ("fargo",), plan=plan)
        assert v.ok, (opening, v)
    text = "Since you enjoyed Fargo, No Country for Old Men is a Crime pick, and you liked it too."
    v = _verify(movies, text, "nc", ("fargo",), plan=plan)
    assert not v.ok and "already liked" in "; ".join(v.problems), v


def test_a_title_inside_a_name_or_the_items_own_text_names_no_other_item() -> None:
    brian = Item(
        "brian",
        "Monty Python's Life of Brian (1979)",
        "Brian of Nazareth is mistaken for a messiah. A War Room full of Romans debates it.",
        {"genres": ["Comedy"], "year": 1979, "cast": ["Graham Chapman", "Michael Palin"]},
    )
    catalog = Catalog(
        [
            brian,
            Item("mic", "Michael (1996)", "", {"genres": ["Comedy"]}),
            Item("war", "War Room, The (1993)", "", {"genres": ["Documentary"]}),
        ]
    )
    plan = item_facts(brian)
    for text in (
        "Monty Python's Life of Brian is a comedy film starring Graham Chapman and Michael Palin.",
        "Monty Python's Life of Brian is a Comedy: a War Room full of Romans debates it.",
    ):
        v = _verify(catalog, text, "brian", plan=plan)
        assert v.ok, (text, v)
    for text in (
        "Monty Python's Life of Brian is a Comedy, like Michael.",
        "Monty Python's Life of Brian is a Comedy, as funny as The War Room.",
    ):
        v = _verify(catalog, text, "brian", plan=plan)
        assert not v.ok and "names other items" in "; ".join(v.problems), (text, v)


def test_kinds_listed_with_commas_pass(movies) -> None:
    text = "Return of the Jedi is an Action, Adventure and Sci-Fi pick."
    assert _verify(movies, text, "rotj", plan=item_facts(movies.get("rotj"))).ok


def test_a_genre_named_twice_is_a_repeat(movies) -> None:
    text = "Aladdin is an Animation, Children's, Comedy and Children's pick."
    v = _verify(movies, text, "ala", plan=item_facts(movies.get("ala")))
    assert not v.ok and "twice" in "; ".join(v.problems), v
    assert _verify(movies, "Aladdin is an Animation, Children's and Comedy pick.", "ala").ok
    text = "Monty Python's Life of Brian is a Comedy and a 1979 comedy."
    v = _verify(movies, text, "brian", plan=item_facts(movies.get("brian")))
    assert not v.ok and "twice" in "; ".join(v.problems), v


class _PrefillChat(FunctionChat):
    continues_prefill = True


def test_a_prefill_backend_gets_true_and_varied_openings(movies) -> None:
    gen = ContentGenerator(_PrefillChat(lambda c: "x"), catalog=movies)
    openings = []
    for target in ("nc", "heat", "sbm", "ll", "lis", "brian", "rotj", "wok"):
        request = _request(movies, target, ("fargo",))
        messages = gen.prompt(request)
        assert messages[-1]["role"] == "assistant" and messages[-2]["role"] == "user"
        opening = messages[-1]["content"]
        title = _title_of(messages[:-1])
        assert opening.endswith(f"{title} is"), opening
        related = any(f.item_id == "fargo" for f in request.plan)
        # A history item is named exactly where the plan relates the item to it.
        assert ("Fargo" in opening) == related, opening
        openings.append(opening)
    assert len({" ".join(o.split()[:3]) for o in openings}) >= 4
    # A backend that writes whole answers gets no prefill.
    plain = ContentGenerator(FunctionChat(lambda c: "x"), catalog=movies)
    assert plain.prompt(_request(movies, "nc", ("fargo",)))[-1]["role"] == "user"


def test_a_pitch_is_prefilled_and_shown_two_sentence_examples(movies, shop) -> None:
    gen = ContentGenerator(_PrefillChat(lambda c: "x"), catalog=shop)
    messages = gen.prompt(_request(shop, "j1", ("f1",)), kind="pitch")
    assert messages[-1]["role"] == "assistant"
    assert messages[-1]["content"].endswith("Alpine Down Jacket is")
    assert "Shape:" not in messages[-2]["content"]
    examples = [m["content"] for m in messages[1:-2] if m["role"] == "assistant"]
    assert examples and all(len(sentences(e)) == 2 for e in examples), examples
    assert not any("Genres:" in m["content"] for m in messages)  # a product's examples
    reasons = [m["content"] for m in gen.prompt(_request(shop, "j1", ("f1",)))[1:-2]]
    assert all(len(sentences(m)) == 1 for m in reasons[1::2])  # reasons keep one sentence
    media = ContentGenerator(_PrefillChat(lambda c: "x"), catalog=movies)
    plain = ReasonRequest("u", movies.get("nc"), (movies.get("fargo"),), {"co_occurrence": 1.0})
    text = " ".join(m["content"] for m in media.prompt(plain, kind="pitch"))
    assert "Genres:" in text and "%" not in text  # no figures to copy where the facts have none


def test_worked_examples_match_the_kind_of_catalog(movies, shop) -> None:
    media = ContentGenerator(FunctionChat(lambda c: "x"), catalog=movies)
    text = " ".join(m["content"] for m in media.prompt(_request(movies, "nc", ("fargo",))))
    assert "jacket" not in text.lower() and "Genres:" in text
    assert "%" in text  # the request's figures, and the examples' own
    # Co-consumption known without figures: the examples show none to copy.
    plain = ReasonRequest("u", movies.get("nc"), (movies.get("fargo"),), {"co_occurrence": 1.0})
    text = " ".join(m["content"] for m in media.prompt(plain))
    assert "People who liked Fargo also liked it." in text and "%" not in text
    goods = ContentGenerator(FunctionChat(lambda c: "x"), catalog=shop)
    text = " ".join(m["content"] for m in goods.prompt(_request(shop, "j1", ("f1",))))
    assert "Category:" in text and "Genres:" not in text


def test_no_prefilled_opening_and_varied_shapes(shop) -> None:
    gen = ContentGenerator(FunctionChat(lambda c: "x"), catalog=shop)
    shapes = set()
    for item_id in ("j1", "s1", "b1", "h1", "p1", "m1", "f1", "c1"):
        messages = gen.prompt(_request(shop, item_id, ("f1",) if item_id != "f1" else ()))
        assert messages[-1]["role"] == "user"
        assert "You may like" not in messages[-1]["content"]
        shapes.add(messages[-1]["content"].rsplit("Shape: ", 1)[1])
    assert len(shapes) >= 2


def test_template_texts_vary_and_pass(shop) -> None:
    gen = ContentGenerator("template", catalog=shop)
    texts = []
    for item_id in ("j1", "s1", "b1", "h1", "p1", "m1", "c1"):
        request = _request(shop, item_id, ("f1",))
        text = gen.template_text(request)
        assert gen.verify(text, request).ok, text
        texts.append(text)
    assert len({" ".join(t.split()[:3]) for t in texts}) >= 3


def test_tone_and_length_are_validated_options(shop) -> None:
    gen = ContentGenerator(
        FunctionChat(lambda c: "x"), catalog=shop, tone="friendly", length="long"
    )
    system = gen.prompt(_request(shop, "j1"))[0]["content"]
    assert "friendly" in system and gen.config()["options"]["tone"] == "friendly"
    for option, value in (("tone", "sarcastic"), ("length", 3), ("tone", True)):
        with pytest.raises(ConfigError, match=option):
            ContentGenerator("template", catalog=shop, **{option: value})
    with pytest.raises(InvalidInputError, match="kind"):
        gen.generate([_request(shop, "j1")], kind="digest")


def test_verify_text_takes_a_plan(shop) -> None:
    plan = request_plan(shop.get("j1"), ())
    assert _verify(shop, "Alpine Down Jacket is made by Summit.", "j1", plan=plan).ok
    with pytest.raises(InvalidInputError):
        verify_text("x.", ["not a fact"], target=shop.get("j1"), catalog=shop)
    with pytest.raises(InvalidInputError):
        verify_text("x.", (), target=shop.get("j1"), catalog=shop, kind="poem")
    assert isinstance(plan[0], Fact)


def test_warm_runs_the_model_once(shop) -> None:
    calls = []
    gen = ContentGenerator(FunctionChat(lambda c: calls.append(c) or "OK"), catalog=shop)
    gen.warm()
    assert len(calls) == 1
    ContentGenerator("template", catalog=shop).warm()  # nothing to warm


class _CountingChat(FunctionChat):
    """A chat backend registered by name, counting the conversations it answers."""

    answered: list = []

    def __init__(self, device=None) -> None:
        super().__init__(lambda c: _CountingChat.answered.append(c) or "OK", name="counting")


def test_a_pipeline_warms_its_model_on_creation_unless_deferred(request) -> None:
    import threading

    from llmrec import registry

    registry.register_backend("llms", "h5-counting", _CountingChat)
    # Other tests list every registered backend: leave none behind.
    request.addfinalizer(lambda: registry._REGISTRY["llms"].pop("h5-counting", None))
    _CountingChat.answered.clear()
    options = dict(encoder="hashing", device="cpu", show_progress=False, llm="h5-counting")
    pipe = Pipeline.from_catalog(SHOP, warm_llm=True, **options)
    for thread in threading.enumerate():
        if thread.name == "llmrec-warm-llm":
            thread.join(10)
    assert pipe._generator is not None and len(_CountingChat.answered) == 1
    _CountingChat.answered.clear()
    deferred = Pipeline.from_catalog(SHOP, **options)  # the default defers
    assert deferred._generator is None and not _CountingChat.answered
    deferred.warm()
    assert len(_CountingChat.answered) == 1
    with pytest.raises(ConfigError, match="warm_llm"):
        Pipeline.from_catalog(SHOP, warm_llm="yes", **options)


def test_template_texts_of_every_kind_pass_on_a_real_shop() -> None:
    from tests.shop import shop_events, shop_items

    events, _ = shop_events()
    pipe = _pipeline(shop_items(), events)
    users = sorted({e.user_id for e in events})[:6]
    gen = pipe.generator
    for kind in ("reason", "pitch", "summary", "headline"):
        texts = []
        for user in users:
            recs = pipe.recommend(user, k=4, generate=False)
            for rec in recs:
                req = pipe._reason_request(rec, user, None, {
                    i: pipe.catalog.get(i) for i in (rec.item_id, *rec.explanation.evidence_item_ids)
                })  # fmt: skip
                text = gen.template_text(req, kind)
                v = gen.verify(text, req, kind)
                assert v.ok, (kind, text, v.problems)
                texts.append(text)
        assert len(set(texts)) > len(texts) // 2, kind  # not one text for every item


def test_a_text_pasting_a_fact_label_is_rejected() -> None:
    from llmrec.catalog import Catalog
    from llmrec.generation import verify_text
    from llmrec.types import Fact, Item

    toy = Item("t", "Toy Story (1995)", "", {"genres": ["Animation", "Comedy"]})
    aladdin = Item("a", "Aladdin (1992)", "", {"genres": ["Animation", "Comedy"]})
    plan = (
        Fact(
            "attribute",
            "Genres: Animation and Comedy.",
            "catalog:genres",
            ("Animation", "Comedy"),
            None,
            "genres",
        ),
    )
    catalog = Catalog([toy, aladdin])
    pasted = (
        "If you liked the Aladdin, the Toy Story, the Genres: Animation and Comedy with Aladdin."
    )
    result = verify_text(pasted, plan, target=toy, evidence=[aladdin], catalog=catalog)
    assert not result.ok and any("fact label" in p for p in result.problems)


def test_people_in_the_wrong_role_are_rejected() -> None:
    from llmrec.catalog import Catalog
    from llmrec.generation import verify_text
    from llmrec.types import Item

    phenomenon = Item(
        "p",
        "Phenomenon (1996)",
        "",
        {
            "directors": ["Jon Turteltaub"],
            "writers": ["Gerald Di Pego"],
            "cast": ["John Travolta", "Kyra Sedgwick"],
        },
    )
    catalog = Catalog([phenomenon, Item("x", "Other (1990)", "", {})])
    swapped = (
        "Phenomenon is a film by Jon Turteltaub, directed by Gerald Di Pego, "
        "and written by John Travolta."
    )
    result = verify_text(swapped, target=phenomenon, catalog=catalog)
    assert not result.ok and any("role" in p for p in result.problems), result
    right = "Phenomenon, directed by Jon Turteltaub and starring John Travolta, is a drama."
    problems = verify_text(right, target=phenomenon, catalog=catalog).problems
    assert not any("role" in p for p in problems), problems
    # every name of a list holds the role (the benchmark's "starring Kevin Bacon, Barry
    # Levinson, and Brad Pitt" of Sleepers, which Levinson directed)
    listed = (
        "Phenomenon stars John Travolta, starring John Travolta, Jon Turteltaub, and Kyra Sedgwick."
    )
    result = verify_text(listed, target=phenomenon, catalog=catalog)
    assert any("'Jon Turteltaub' a role (starring)" in p for p in result.problems), result
    cast = "Phenomenon is a drama starring John Travolta and Kyra Sedgwick."
    problems = verify_text(cast, target=phenomenon, catalog=catalog).problems
    assert not any("role" in p for p in problems), problems


def test_answers_are_cleaned_before_they_are_checked() -> None:
    from llmrec.generation.prompts import answer_text

    asked = [{"role": "user", "content": "Item: x"}]
    # "a" before a vowel sound becomes "an"; "a one-", "a unique", "a European" stay.
    text = answer_text(asked, "Heat is a Action pick, a unique and a one-off film.")
    assert text == "Heat is an Action pick, a unique and a one-off film."
    # A pitch's sentence that repeats an earlier one is dropped.
    loop = "Fleece is a mid layer. It keeps you warm. It keeps you warm. It keeps you warm."
    assert answer_text(asked, loop, "pitch") == "Fleece is a mid layer. It keeps you warm."
    # A continuation of a prefilled opening is joined to it, even one that opens with the
    # opening's own first words; an answer that repeats the whole opening is taken as is.
    opened = [
        *asked,
        {"role": "assistant", "content": "A change from your usual Fitness picks: Rope is"},
    ]
    copied = answer_text(opened, "a change from your usual Fitness picks.")
    assert (
        copied
        == "A change from your usual Fitness picks: Rope is a change from your usual Fitness picks."
    )
    capital = answer_text(asked, "Rope is a Change from your usual Fitness picks.")
    assert capital == "Rope is a change from your usual Fitness picks."
    # A share left without its verb ends as the plan's fact does; a finished one stays.
    cut = "Dave is a Comedy pick: 22% of the 148 people who liked Die Hard: With a Vengeance."
    assert answer_text(asked, cut) == cut[:-1] + " liked it too."
    done = "Heat is a Crime pick: 40% of the 55 people who liked Fargo liked it too."
    assert answer_text(asked, done) == done
    assert answer_text(asked, "Heat: 40% of the 55 people who liked Fargo, and more.").endswith(
        "more."
    )
    whole = answer_text(opened, "A change from your  usual Fitness picks: Rope is a rope.")
    assert whole == "A change from your usual Fitness picks: Rope is a rope."
    # Three kinds joined by "and" are listed with commas; two stay as they are.
    listed = answer_text(asked, "Heat is an Action and Crime and Drama pick. It is long.")
    assert listed == "Heat is an Action, Crime and Drama pick."
    assert (
        answer_text(asked, "Heat is a Crime and Drama pick.") == "Heat is a Crime and Drama pick."
    )
    # The item said to be a maker of itself is what it makes ("is a brand that makes a").
    maker = answer_text(asked, "Roller is a brand that makes a foam roller for recovery.")
    assert maker == "Roller is a foam roller for recovery."
    # A share written both ways loses its second verb (and gains none).
    twice = "Heat is a Crime pick, liked by 40% of the 55 people who liked Fargo liked it too."
    assert answer_text(asked, twice) == twice.replace(" liked it too.", ".")


def test_an_abbreviation_ends_no_sentence() -> None:
    text = "A U.S. Army officer reviews a case. The crew of H.A.L. 9000 sets off. Is it 3? Yes!"
    assert sentences(text) == [
        "A U.S. Army officer reviews a case.",
        "The crew of H.A.L. 9000 sets off.",
        "Is it 3?",
        "Yes!",
    ]


def test_a_template_pitch_keeps_a_description_sentence_whole() -> None:
    from llmrec.types import Item

    text = "A U.S. Army officer reviews the case of a captain killed in the Gulf. He doubts it."
    courage = Item("c", "Courage Under Fire (1996)", text, {"genres": ["Drama", "War"]})
    catalog = Catalog([courage, Item("o", "Other (1990)", "", {"genres": ["Drama"]})])
    gen = ContentGenerator("template", catalog=catalog)
    pitch = gen.generate([ReasonRequest(user_id="u", item=courage)], kind="pitch")[0]
    assert "A U.S. Army officer reviews the case of a captain killed in the Gulf." in pitch.text


def test_a_template_pitch_does_not_name_the_item_twice() -> None:
    from llmrec.types import Item

    text = "Babe, a pig raised by sheepdogs, learns to herd sheep with a little help."
    babe = Item("b", "Babe (1995)", text, {"genres": ["Children's", "Comedy"]})
    catalog = Catalog([babe, Item("o", "Other (1990)", "", {"genres": ["Drama"]})])
    gen = ContentGenerator("template", catalog=catalog)
    pitch = gen.generate([ReasonRequest(user_id="u", item=babe)], kind="pitch")[0]
    assert (
        pitch.text.startswith("Babe, a pig raised by sheepdogs") and "Babe: Babe" not in pitch.text
    )
