"""The fact plan: what a text about one recommendation may say, chosen before it is written.

A plan is a tuple of :class:`~llmrec.Fact`, each a checked statement with its provenance:

- the item's own attributes, whatever the catalog has (category, brand, price, director,
  cast, runtime, year, genres, ...) and a snippet of its text (:func:`item_facts`);
- the user's history items joined to it by the relation that holds
  (:func:`relation_facts`): co-consumption with its strength ("Liked by 41% of the 230
  people who liked Fargo."), a shared attribute value (same director, cast member, brand,
  category) or text similarity above a threshold; no relation fact when none holds;
- the user's matched preferences and query words, the item's status (new, trending) and
  the ranking signals that fired (:func:`context_facts`).

The pipeline builds plans from its own data (``Explanation.plan``); for a
:class:`~llmrec.generation.ReasonRequest` without one, :func:`request_plan` builds one
from the request alone. The prompt, the templates and the verifier read the same plan.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmrec.generation.text import (
    STOPWORDS,
    display_title,
    join_words,
    normalize,
    sanitize_text,
    sentence_case,
)
from llmrec.types import Fact, Item

__all__ = [
    "attribute_strings",
    "MIN_CO_USERS",
    "PEOPLE_ATTRIBUTES",
    "FRAME_SHAPES",
    "RELATION_KINDS",
    "context_facts",
    "format_value",
    "item_facts",
    "plan_numbers",
    "plan_words",
    "relation_facts",
    "relation_items",
    "request_plan",
    "share_lower_bound",
    "summary_frame",
    "TASTE_CHANGE",
    "TASTE_SHORT",
    "taste_change",
    "taste_facts",
]

#: The phrase that may name the user's usual kind (see :func:`taste_change`).
TASTE_CHANGE = "a change from your usual"
#: Its short form, for a headline with little room ("Beyond Sports: <title>").
TASTE_SHORT = "beyond"

#: Fact kinds that join a history item to the recommended item.
RELATION_KINDS = ("co_consumption", "shared_attribute", "similar_text")
#: Fewest people who liked both items before co-consumption is stated (one shared user
#: is chance, not a pattern).
MIN_CO_USERS = 2
#: Attributes holding people or makers: a shared value is a strong relation.
PEOPLE_ATTRIBUTES = (
    "director",
    "directors",
    "writer",
    "writers",
    "cast",
    "actors",
    "author",
    "authors",
    "artist",
    "brand",
    "creator",
    "publisher",
    "studio",
)
#: Attributes that file an item under a kind (a news desk, a shop category, a genre): the
#: value most of a user's liked items share is their usual kind (:func:`taste_facts`).
TASTE_ATTRIBUTES = ("section", "category", "categories", "genres", "type")
#: Attributes never stated: the item's identity, internal flags, long text.
_HIDDEN = frozenset({"item_id", "id", "title", "text", "description", "image", "url", "new"})
_STATUS = {
    "new": "New in the catalog.",
    "is_new": "New in the catalog.",
    "trending": "Trending now.",
}
#: How each known attribute reads as a statement; ``{}`` is the value.
_LABELS: Mapping[str, str] = {
    "director": "Directed by {}.",
    "directors": "Directed by {}.",
    "writer": "Written by {}.",
    "writers": "Written by {}.",
    "cast": "Starring {}.",
    "actors": "Starring {}.",
    "author": "By {}.",
    "authors": "By {}.",
    "brand": "Made by {}.",
    "category": "Category: {}.",
    "categories": "Category: {}.",
    "genres": "Genres: {}.",
    "tags": "Tags: {}.",
    "price": "Priced at {}.",
    "year": "From {}.",
    "runtime": "Runs {} minutes.",
    "runtime_min": "Runs {} minutes.",
    "age_rating": "Rated {}.",
}
#: Shared values of these attributes are too common to relate two items.
_WEAK_SHARED = frozenset({"year", "price", "runtime", "runtime_min", "age_rating"})
_MAX_VALUES = 4
_SNIPPET_CHARS = 200


@functools.lru_cache(maxsize=1 << 16)
def _shown_title(title: str) -> str:
    return sanitize_text(display_title(title), 100)


@functools.lru_cache(maxsize=1 << 16)
def _clean_value(value: str) -> str:
    return sanitize_text(value, 60)


def format_value(key: str, value: Any) -> tuple[str, ...]:
    """An attribute value as the strings a text may write (``price`` 129 -> ``"$129"``);
    empty for values that are not plain scalars or lists of them."""
    values = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in values[:_MAX_VALUES]:
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            continue
        if key == "price" and isinstance(v, (int, float)):
            out.append(f"${v:,.2f}".replace(".00", ""))
        elif isinstance(v, (int, float)):
            out.append(str(int(v)) if float(v).is_integer() else f"{v:g}")
        elif isinstance(v, str) and v.strip():
            out.append(_clean_value(v))
    return tuple(v for v in out if v)


def _statement(key: str, values: Sequence[str]) -> str:
    shown = join_words(list(values))
    label = _LABELS.get(key)
    if label is None:
        label = key.replace("_", " ").capitalize() + ": {}."
    return label.format(shown)


def item_facts(item: Item) -> list[Fact]:
    """The item's own attribute values and a snippet of its text, each one fact."""
    out = []
    for key, value in item.attributes.items():
        if not isinstance(key, str) or key in _HIDDEN or key in _STATUS:
            continue
        values = format_value(key, value)
        if values:
            out.append(
                Fact("attribute", _statement(key, values), f"catalog:{key}", values, None, key)
            )
    snippet = sanitize_text(item.text, _SNIPPET_CHARS) if item.text else ""
    if snippet:
        out.append(Fact("description", snippet, "catalog:text", (), None, "text"))
    for key, text in _STATUS.items():
        if item.attributes.get(key) is True:
            out.append(Fact("status", text, f"catalog:{key}", (), None, key, 1.0))
    return out


def attribute_strings(value: Any) -> list[str]:
    """The string values of an attribute (a str or a list of them), as given."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return [v for v in values[:_MAX_VALUES] if isinstance(v, str) and v.strip()]


def _shared_values(target: Item, other: Item) -> list[tuple[str, tuple[str, ...]]]:
    """``(attribute, shared values)`` of two items, people first. Values are matched
    case-blind as given and only the shared ones are formatted: this runs for every
    history item of every recommendation."""
    shared = []
    for key, value in target.attributes.items():
        if not isinstance(key, str) or key in _HIDDEN or key in _WEAK_SHARED or key in _STATUS:
            continue
        theirs = {v.strip().casefold() for v in attribute_strings(other.attributes.get(key))}
        if not theirs:
            continue
        common = [v for v in attribute_strings(value) if v.strip().casefold() in theirs]
        values = format_value(key, common) if common else ()
        if values:
            shared.append((key, values))
    shared.sort(key=lambda kv: kv[0] not in PEOPLE_ATTRIBUTES)
    return shared


def share_lower_bound(hits: int, total: int, z: float = 1.96) -> float:
    """Wilson lower bound of the share ``hits / total``: what the share is at least, with
    ~97.5% confidence. It ranks "5 of 6 people" (0.44) below "49 of 71" (0.58), so a
    pattern seen in a handful of people does not outrank one seen in many."""
    if total <= 0:
        return 0.0
    p = hits / total
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, (p + z * z / (2 * total) - spread) / (1 + z * z / total))


def relation_facts(
    target: Item,
    other: Item,
    *,
    co_users: tuple[int, int] | None = None,
    similarity: float | None = None,
    threshold: float = 1.0,
) -> list[Fact]:
    """The relations that hold between the user's history item ``other`` and ``target``.

    Args:
        target: The recommended item.
        other: A history item of the user.
        co_users: ``(people who liked both, people who liked other)``, if known.
        similarity: Text similarity of the two items, if known.
        threshold: Least similarity stated as a relation.

    Returns:
        Co-consumption (with ``MIN_CO_USERS`` or more people), each shared attribute and
        similar text, strongest first; empty when no relation holds.
    """
    name = _shown_title(other.title)
    out = []
    if co_users is not None and co_users[0] >= MIN_CO_USERS and co_users[1] > 0:
        both, liked = co_users
        share = round(100 * both / liked)
        out.append(
            Fact(
                "co_consumption",
                f"Liked by {share}% of the {liked} people who liked {name}.",
                "profiles:co-consumption",
                (f"{share}%", str(liked), str(both)),
                other.item_id,
                None,
                share_lower_bound(both, liked),
            )
        )
    for key, values in _shared_values(target, other):
        people = key in PEOPLE_ATTRIBUTES
        label = key.replace("_", " ")
        out.append(
            Fact(
                "shared_attribute",
                f"Shares {label} {join_words(list(values))} with {name}.",
                f"catalog:{key}",
                values,
                other.item_id,
                key,
                1.0 if people else 0.3,
            )
        )
    alike = (
        _words_alike(target, other) if similarity is not None and similarity >= threshold else ()
    )
    if alike:
        # Close vectors alone are no relation a reader can see: "Kids Hiking Boots has a
        # description similar to that of Trail Running Shoes" (sturdy boots for children,
        # light trail shoes) read as false; the two must also share a word.
        out.append(
            Fact(
                "similar_text",
                f"Its description is close to that of {name}.",
                "encoder:similarity",
                alike,
                other.item_id,
                None,
                float(similarity),
            )
        )
    return out


def _words_alike(target: Item, other: Item) -> tuple[str, ...]:
    """Up to three content words (a plural as its singular) the two items' titles, texts
    and tags share, in the target's order."""

    def words(item: Item) -> list[str]:
        text = normalize(" ".join([display_title(item.title), item.text, *item.tags]))
        out = []
        for word in text.split():
            if len(word) > 2 and word not in STOPWORDS and not word.isdigit():
                out.append(word[:-1] if word.endswith("s") and not word.endswith("ss") else word)
        return out

    theirs = set(words(other))
    return tuple(dict.fromkeys(w for w in words(target) if w in theirs))[:3]


def taste_change(fact: Fact, *, story: bool | None, short: bool = False) -> str:
    """How a text states a ``taste`` fact: "a change from your usual Sports stories" (of
    an article; "... picks" otherwise; the bare "a change from your usual Sports" with
    ``story=None``; "beyond Sports" with ``short``, for a headline). The verifier accepts
    the user's usual kind only in these phrases."""
    if short:
        return f"{TASTE_SHORT} {fact.values[0]}"
    phrase = f"{TASTE_CHANGE} {fact.values[0]}"
    return phrase if story is None else f"{phrase} {'stories' if story else 'picks'}"


def taste_facts(target: Item, liked: Sequence[Item]) -> list[Fact]:
    """What the user usually likes, when ``target`` is not it: for the first of
    :data:`TASTE_ATTRIBUTES` the target has, the value that at least two and at least half
    of the user's ``liked`` items have and the target lacks ("Most of what you liked is
    Sports (3 of 4); this is not."). Empty when the target is the user's usual kind (a
    shared attribute states that) or no value dominates."""
    for key in TASTE_ATTRIBUTES:
        own = {v.strip().casefold() for v in attribute_strings(target.attributes.get(key))}
        if not own:
            continue
        counts: dict[str, int] = {}
        shown: dict[str, str] = {}
        for other in liked:
            for v in dict.fromkeys(attribute_strings(other.attributes.get(key))):
                folded = v.strip().casefold()
                counts[folded] = counts.get(folded, 0) + 1
                shown.setdefault(folded, v)
        if not counts:
            continue
        ranked = sorted(counts.values(), reverse=True)
        top = max(counts, key=lambda v: counts[v])
        n, count = len(liked), counts[top]
        values = format_value(key, shown[top])
        tied = len(ranked) > 1 and ranked[1] == count  # "most of" needs one value ahead
        if top in own or count < 2 or 2 * count < n or tied or not values:
            return []
        return [
            Fact(
                "taste",
                f"Most of what you liked is {values[0]} ({count} of {n}); this is not.",
                "profile:history",
                (values[0], str(count), str(n)),
                None,
                key,
                count / n,
            )
        ]
    return []


#: How many ways :func:`summary_frame` writes each kind of opening.
FRAME_SHAPES = 9


def summary_frame(
    plan: Sequence[Fact], names: Mapping[str, str], *, story: bool, shape: int = 0
) -> str:
    """A summary's opening sentence about the reader, from its plan: the strongest
    relation to a history item (``names``: item id -> shown title) as its co-consumption
    figure or shared value ("Like Marathon record falls, which you liked, this is a
    Sports story."), else the contrast with the reader's usual kind ("A change from your
    usual Sports stories."); empty when the plan has neither. ``shape`` picks one of
    :data:`FRAME_SHAPES` wordings. The sentences after it are the article's; the verifier
    exempts only this sentence from needing the article's words."""
    noun = "story" if story else "pick"
    shape %= FRAME_SHAPES
    relations = sorted(
        (
            f
            for f in plan
            if f.kind in ("co_consumption", "shared_attribute") and f.item_id and f.values
        ),
        key=lambda f: -f.weight,
    )
    for fact in relations:
        name = names.get(fact.item_id or "")
        if not name:
            continue
        if fact.kind == "co_consumption" and len(fact.values) >= 2:
            share, liked = fact.values[0], fact.values[1]
            return (
                f"{share} of the {liked} people who liked {name} liked it too.",
                f"Of the {liked} people who liked {name}, {share} liked it too.",
                f"Liked by {share} of the {liked} people who liked {name}.",
                f"Among the {liked} people who liked {name}, {share} liked it too.",
                f"You liked {name}, as did {liked} people; {share} of them liked it too.",
                f"People who liked {name} liked it too: {share} of {liked}.",
                f"{share} of the {liked} people who liked {name}, as you did, liked it too.",
                f"Liked by {share} of the {liked} people who liked {name}, as you did.",
                f"Of the {liked} people who liked {name}, as you did, {share} liked it too.",
            )[shape]
        if fact.kind == "shared_attribute" and fact.attribute not in PEOPLE_ATTRIBUTES:
            value = fact.values[0]
            article = "an" if value[:1].lower() in "aeiou" else "a"
            return (
                f"Like {name}, which you liked, this is {article} {value} {noun}.",
                f"You liked {name}; this is another {value} {noun}.",
                f"Another {value} {noun}, like {name}, which you liked.",
                f"Since you liked {name}, here is another {value} {noun}.",
                f"If you liked {name}, this is another {value} {noun}.",
                f"One more {value} {noun} for you, as you liked {name}.",
                f"After {name}, which you liked, another {value} {noun}.",
                f"As with {name}, which you liked, this is {article} {value} {noun}.",
                f"You liked {name}, and this too is {article} {value} {noun}.",
            )[shape]
    taste = next((f for f in plan if f.kind == "taste" and f.values), None)
    if taste is not None:
        change = taste_change(taste, story=story)
        return (
            f"{sentence_case(change)}.",
            f"This is {change}.",
            f"Here is {change}.",
            f"Try {change}.",
            f"Worth a look: {change}.",
            f"Read on for {change}.",
            f"Also for you: {change}.",
            f"Up next, {change}.",
            f"For {change}, read on.",
        )[shape]
    return ""


def context_facts(
    item: Item,
    *,
    matched_tags: Iterable[str] = (),
    query: str | None = None,
    signals: Mapping[str, float] | None = None,
    relations: Mapping[str, str] | None = None,
    threshold: float = 0.05,
    stated: Sequence[str] = (),
) -> list[Fact]:
    """The user's matched preferences (tags they like, words of what they said they
    like: ``stated``, newest last) and query words, and the signals that fired."""
    out = []
    tags = [t for t in matched_tags if t in item.tags][:2]
    if tags:
        out.append(
            Fact(
                "preference",
                f"Matches your interest in {join_words(tags)}.",
                "profile:tag_affinity",
                tuple(tags),
                weight=1.0,
            )
        )
    seen, said = {normalize(t) for t in tags}, []
    for text in reversed(stated):
        for clause in _CLAUSES.split(str(text)):
            if _NEGATED.search(clause):  # "no horror please", "I hate running"
                continue
            for word in _query_matches(item, clause):
                if normalize(word) not in seen and normalize(word) not in _LIKING:
                    seen.add(normalize(word))
                    said.append(word)
    said = said[:2]
    if said:
        out.append(
            Fact(
                "preference",
                f"Matches your interest in {join_words(said)}.",
                "profile:stated_preferences",
                tuple(said),
                weight=0.9,
            )
        )
    if query:
        words = _query_matches(item, query)
        if words:
            out.append(
                Fact(
                    "query",
                    f"Matches your search for '{' '.join(words)}'.",
                    "request:query",
                    tuple(words),
                )
            )
    fired = sorted(
        ((float(v), k) for k, v in (signals or {}).items() if _number(v) and v > threshold),
        reverse=True,
    )
    for value, name in fired[:3]:
        relation = (relations or {}).get(name)
        out.append(
            Fact(
                "signal",
                f"Ranked by {name.replace('_', ' ')} ({value:.2f}).",
                f"ranker:{name}",
                (),
                attribute=relation,
                weight=value,
            )
        )
        if relation == "popular" and value > 0.2:
            out.append(
                Fact("status", "Popular right now.", "ranker:popularity", (), None, None, value)
            )
    return out


#: Clauses of a stated preference, and the words that turn one against what it names.
_CLAUSES = re.compile(r"[,.;:!?]|\bbut\b", re.IGNORECASE)
_NEGATED = re.compile(
    r"\b(?:no|not|never|without|hate|hates|dislike|dislikes|avoid|except|nothing|none)\b|n't\b",
    re.IGNORECASE,
)
#: Words of liking itself, not of what is liked ("I love running": "running").
_LIKING = frozenset("love loves like likes enjoy enjoys want wants prefer prefers into fan".split())


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _query_matches(item: Item, query: str) -> list[str]:
    """The query's content words that the item's title, tags, attributes or text has."""
    own = set(
        normalize(" ".join([item.title, item.text, *item.tags, *map(str, _flat(item))])).split()
    )
    words = []
    for raw in re.findall(r"[\w'-]+", sanitize_text(query, 100)):
        norm = normalize(raw)
        if norm and norm not in STOPWORDS and len(norm) > 2 and set(norm.split()) <= own:
            words.append(raw)
    return list(dict.fromkeys(words))[:3]


def _flat(item: Item) -> list[Any]:
    out: list[Any] = []
    for key, value in item.attributes.items():
        if key in _HIDDEN:
            continue
        out.extend(value if isinstance(value, (list, tuple)) else [value])
    return out


def request_plan(
    item: Item,
    evidence: Sequence[Item],
    *,
    signals: Mapping[str, float] | None = None,
    relations: Mapping[str, str] | None = None,
    matched_tags: Iterable[str] = (),
    query: str | None = None,
) -> tuple[Fact, ...]:
    """A plan built from a request alone (no pipeline data): the item's facts, each
    evidence item as the user's history with the shared attributes that hold, and a
    co-consumption or similar-text relation only where the request's signals say it
    ranked the item (without figures: the counts are not known here)."""
    plan = item_facts(item)
    fired = {
        (relations or {}).get(name)
        for name, value in (signals or {}).items()
        if _number(value) and value > 0.05
    }
    for n, other in enumerate(evidence):
        name = sanitize_text(display_title(other.title), 100)
        plan.append(Fact("history", f"You liked {name}.", "request:evidence", (), other.item_id))
        plan += relation_facts(item, other)
        if n == 0 and "co_consumption" in fired:
            plan.append(
                Fact(
                    "co_consumption",
                    f"People who liked {name} also liked it.",
                    "request:signals",
                    (),
                    other.item_id,
                    None,
                    0.5,
                )
            )
        if n == 0 and "similar_text" in fired:
            plan.append(
                Fact(
                    "similar_text",
                    f"Its description is close to that of {name}.",
                    "request:signals",
                    (),
                    other.item_id,
                    None,
                    0.5,
                )
            )
    plan += context_facts(
        item, matched_tags=matched_tags, query=query, signals=signals, relations=relations
    )
    return tuple(plan)


def relation_items(plan: Iterable[Fact], kinds: Iterable[str] = RELATION_KINDS) -> set[str]:
    """Ids of the history items the plan joins to the item by one of ``kinds``."""
    wanted = set(kinds)
    return {f.item_id for f in plan if f.item_id is not None and f.kind in wanted}


def plan_words(plan: Iterable[Fact]) -> str:
    """The normalized words of every fact's text and values (what a text may state)."""
    return normalize(" ".join(f"{f.text} {' '.join(f.values)}" for f in plan))


def plan_numbers(plan: Iterable[Fact]) -> set[float]:
    """Every number the plan states (``"$1,299.50"`` -> 1299.5, ``"41%"`` -> 41)."""
    out = set()
    for fact in plan:
        for m in re.finditer(r"\d[\d,]*(?:\.\d+)?", f"{fact.text} {' '.join(fact.values)}"):
            try:
                out.add(float(m.group().replace(",", "")))
            except ValueError:
                continue
    return out
