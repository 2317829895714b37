"""Texts written without a model, from the fact plan alone: :func:`template_text`.

Every template states only plan facts, in one of several sentence shapes (chosen per item
and user, so a list does not read the same twelve times), and passes
:func:`~llmrec.generation.verify_text` by construction. A summary's template is
extractive: the sentences of the item's text that best match what the user follows, in
their order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from llmrec.generation.claims import HEADLINE_CHARS, sentences
from llmrec.generation.evidence import Facts
from llmrec.generation.plan import FRAME_SHAPES, PEOPLE_ATTRIBUTES, summary_frame, taste_change
from llmrec.generation.prompts import (
    article_for,
    focused_sentences,
    history_names,
    section_of,
    select_facts,
    shape_index,
)
from llmrec.generation.text import (
    join_words,
    normalize,
    sentence_case,
    title_clauses,
)
from llmrec.types import Fact

__all__ = ["complete_pitch", "digest_text", "reader_sentence", "template_text"]


def _history_name(f: Facts, fact: Fact) -> str:
    for item, title in zip(f.evidence_items, f.evidence):
        if item.item_id == fact.item_id:
            return title
    return ""


def _kind_words(f: Facts) -> str:
    """What the item is, in its own words: up to two genres or its category."""
    section = section_of(f)
    if section:
        return section
    if f.genres:
        return join_words(list(f.genres[:2]))
    for fact in f.plan:
        if fact.kind == "attribute" and fact.attribute in ("category", "categories", "type"):
            return fact.values[0]
    return ""


def _pick(f: Facts, kind: str) -> str:
    """ "a Comedy pick", or for an article "a Health story" (not "a vaccines and
    children pick")."""
    noun = "story" if section_of(f) else "pick"
    return f"{article_for(kind)} {kind} {noun}" if kind else "a pick"


def _people_tail(f: Facts) -> str:
    """ ", directed by X" / ", made by X" from the item's own attributes, or empty."""
    for fact in f.plan:
        if fact.kind == "attribute" and fact.attribute in PEOPLE_ATTRIBUTES and fact.values:
            verb = fact.text.split(" by ")[0].lower() if " by " in fact.text else ""
            if verb in ("directed", "written", "made"):
                return f", {verb} by {fact.values[0]}"
    return ""


def _relation_sentence(f: Facts, fact: Fact, shape: int) -> str | None:
    """One sentence stating a relation fact, in one of two shapes."""
    name, title = _history_name(f, fact), f.title
    if not name:
        return None
    if fact.kind == "co_consumption" and len(fact.values) >= 2:
        share, liked = fact.values[0], fact.values[1]
        return (
            f"{title} was liked by {share} of the {liked} people who liked {name}.",
            f"Of the {liked} people who liked {name}, {share} also liked {title}.",
            f"Since you liked {name}, {title} may suit you: {share} of the {liked} people "
            f"who liked {name} also liked it.",
            f"{share} of the {liked} people who liked {name} also liked {title}, so it may "
            "suit you too.",
        )[shape % 4]
    if fact.kind == "co_consumption":
        return f"People who liked {name} also liked {title}."
    if fact.kind == "shared_attribute":
        label = (fact.attribute or "").replace("_", " ")
        value = join_words(list(fact.values[:2]))
        if shape % 2:
            return f"You liked {name}, and {title} has the same {label}: {value}."
        return f"{title} shares its {label}, {value}, with {name}, which you liked."
    if fact.kind == "similar_text":
        if shape % 2:
            return f"{title} has a description similar to that of {name}, which you liked."
        return f"If you enjoyed {name}, {title} has a similar description."
    return None


def _reason(f: Facts) -> str:
    shape = shape_index(f, 4)
    chosen = select_facts(f, limit=8)
    kind = _kind_words(f)
    for fact in chosen:
        if fact.kind in ("co_consumption", "shared_attribute", "similar_text"):
            sentence = _relation_sentence(f, fact, shape)
            if sentence:
                return sentence
    pick = _pick(f, kind)
    for fact in chosen:
        if fact.kind == "preference":
            tags = join_words(list(fact.values))
            if shape % 2:
                return f"For your interest in {tags}, {f.title} is {pick}{_people_tail(f)}."
            return f"{f.title} is {pick} that matches your interest in {tags}."
        if fact.kind == "query":
            return f"{f.title} matches your search for {' '.join(fact.values)}."
        if fact.kind == "taste" and fact.values:
            change = taste_change(fact, story=bool(section_of(f)))
            if shape % 2:
                return f"{sentence_case(change)}: {f.title} is {pick}{_people_tail(f)}."
            return f"{f.title} is {pick}{_people_tail(f)}, {change}."
        if fact.kind == "status":
            status = fact.text.rstrip(".").lower()
            return f"{f.title} is {pick}{_people_tail(f)}, {status}."
    history = [t for t in f.evidence[:2] if t]
    if history:
        return f"You enjoyed {join_words(history)}; {f.title} is {pick}{_people_tail(f)}."
    return f"{f.title} is {pick}{_people_tail(f)}."


def _opening(f: Facts) -> str:
    """The pitch's first sentence: what the item is, in its own words."""
    kind = _kind_words(f)
    description = [x for x in f.plan if x.kind == "description"]
    first = sentences(description[0].text)[0] if description else ""
    if first and len(first.split()) <= 30 and first.endswith((".", "!")):
        # A description that opens with the title ("Babe, a pig raised by sheepdogs, ...")
        # names the item itself.
        if normalize(first).startswith(normalize(f.title)):
            return first
        return f"{f.title}: {first}"
    pick = _pick(f, kind)
    return f"{f.title} is {pick}{_people_tail(f)}."


def _pitch(f: Facts) -> str:
    parts = [_opening(f), _reason(f)]
    if parts[1].startswith(f"{f.title} is "):  # the reason restated what it is
        parts[1] = ""
    extra = [
        x.text
        for x in f.plan
        if x.kind == "attribute"
        and x.attribute in ("price", "director", "brand", "year")
        and not any(normalize(v) in normalize(" ".join(parts)) for v in x.values)
    ]
    if extra:
        parts.append(extra[0])
    if len([p for p in parts if p]) < 2:
        parts.append(next((x.text for x in f.plan if x.kind == "attribute"), f"{f.title} is here."))
    return " ".join(p for p in parts if p)


def complete_pitch(f: Facts, text: str) -> str | None:
    """A one-sentence pitch ``text`` with a second sentence from the plan: the first
    sentence of the item's own description, else its price, maker or year, whichever
    ``text`` does not state yet; ``None`` when there is none (the pitch's template then
    stands)."""
    said = set(normalize(text).split())
    description = [x for x in f.plan if x.kind == "description"]
    first = sentences(description[0].text)[0] if description else ""
    candidates = []
    if first and len(first.split()) <= 30 and first.endswith((".", "!")):
        candidates.append(first)
    candidates += [
        x.text
        for x in f.plan
        if x.kind == "attribute" and x.attribute in ("price", "brand", "director", "year")
    ]
    for sentence in candidates:
        words = set(normalize(sentence).split())
        if words and len(words & said) < 0.5 * len(words):  # not a restatement
            return f"{text.rstrip()} {sentence}"
    return None


def reader_sentence(f: Facts) -> str:
    """A summary's opening sentence about the reader (:func:`~llmrec.generation.plan.
    summary_frame` of its plan, in the request's shape), or empty."""
    return summary_frame(
        f.plan, history_names(f), story=bool(section_of(f)), shape=shape_index(f, FRAME_SHAPES)
    )


def _summary(f: Facts) -> str:
    """The article's sentences that best match the user's interests, in article order
    (two or three, at most about 90 words; the opening ones when none match), skipping
    one that repeats three words of a sentence already taken."""
    found = focused_sentences(f, 4)
    if not found:
        return _reason(f)
    frame = reader_sentence(f)
    words, out, seen = len(frame.split()), [frame] if frame else [], set()
    for sentence in found:
        n = len(sentence.split())
        if len(out) > bool(frame) and (words + n > 90 or len(out) == 3 + bool(frame)):
            break
        grams = _trigrams(sentence)
        if grams & seen:  # "food and energy" twice reads as a repeat
            continue
        out.append(sentence)
        words += n
        seen |= grams
    return " ".join(out)


def _trigrams(sentence: str) -> set[tuple[str, ...]]:
    words = normalize(sentence).split()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def _alike(fact: Fact) -> bool:
    """Whether a shared attribute makes two items alike enough to say "X, like Y": the
    same section or category, a shared person, or two shared values (one genre is not)."""
    kind_defining = fact.attribute in ("section", "category", "categories")
    return kind_defining or fact.attribute in PEOPLE_ATTRIBUTES or len(fact.values) >= 2


def _headline(f: Facts) -> str:
    """The first of the plan's headline shapes that fits :data:`HEADLINE_CHARS`: those
    naming the user's own history item first (so two readers of one article get
    different lines), then the shared value or the change from their usual kind, then
    what the item is; a title's leading clause stands in for a long one
    (:func:`~llmrec.generation.text.title_clauses`)."""
    personal: list[tuple[str, str]] = []  # (the words before the history name, the name)
    general: list[tuple[str, str]] = []  # (before the title, after it)
    compact: list[tuple[str, str]] = []  # the same facts in fewer characters, tried later
    for fact in select_facts(f, limit=6):
        name = _history_name(f, fact)
        if fact.kind == "co_consumption" and name:
            personal.append((", for fans of ", name))
        elif fact.kind == "shared_attribute" and name and fact.values:
            personal.append((f": {fact.values[0]}, as in ", name))
            if _alike(fact):
                personal.append((", like ", name))
            if fact.attribute not in PEOPLE_ATTRIBUTES:  # shorter: "More Sports for you: ..."
                general.append((f"More {fact.values[0]} for you: ", ""))
                compact.append((f"{fact.values[0]} for you: ", ""))
        elif fact.kind == "preference":
            general.append(("", f": more {join_words(list(fact.values))} for you"))
        elif fact.kind == "taste" and fact.values:
            change = taste_change(fact, story=bool(section_of(f)))  # "... Fitness picks"
            general += [("", f": {change}"), (f"{sentence_case(change)}: ", "")]
            compact.append((f"{sentence_case(taste_change(fact, story=None, short=True))}: ", ""))
    general += compact
    kind = _kind_words(f)
    if kind:
        general.append(("", f": {_pick(f, kind)}"))
        # the shortest line that still says more than the name: its first kind word
        general.append(("", f": {f.genres[0] if f.genres and not section_of(f) else kind}"))
    titles = title_clauses(f.title)
    for words, name in personal:
        for title in titles:  # the item's title gives way last
            for cited in title_clauses(name):
                if len(title) + len(words) + len(cited) <= HEADLINE_CHARS:
                    return f"{title}{words}{cited}"
    for before, after in general:
        for title in titles:
            if len(before) + len(title) + len(after) <= HEADLINE_CHARS:
                return f"{before}{title}{after}"
    if len(f.title) <= HEADLINE_CHARS:
        return f.title
    return f.title[: HEADLINE_CHARS - 3].rsplit(" ", 1)[0] + "..."


def template_text(f: Facts) -> str:
    """The template text of ``f.kind`` built from the plan only."""
    if f.kind == "pitch":
        text = _pitch(f)
    elif f.kind == "summary":
        text = _summary(f)
    elif f.kind == "headline":
        return _headline(f)
    elif f.kind == "digest":
        pairs = list(zip(f.evidence_items, f.evidence))
        listed = [t for e, t in pairs if e.item_id in f.listed]
        related = {x.item_id for x in f.plan if x.kind in ("co_consumption", "shared_attribute")}
        history = [t for e, t in pairs if e.item_id not in f.listed and e.item_id in related]
        return digest_text([f.title, *listed], history)
    else:
        text = _reason(f)
    return sentence_case(text)


def digest_text(titles: Sequence[str], history: Sequence[str]) -> str:
    """One line introducing a list: its first titles and, when known, the user's
    history item most of it relates to."""
    shown = [t for t in titles if t][:2]
    if not shown:
        return "Your picks are ready."
    lead = join_words(shown)
    # The wording follows the list, so digests of different lists open differently.
    shape = int(hashlib.blake2s("|".join(shown).encode(), digest_size=4).hexdigest(), 16) % 3
    if history:
        return (
            f"Your picks, led by {lead}, chosen because you enjoyed {history[0]}.",
            f"Because you enjoyed {history[0]}, your list starts with {lead}.",
            f"Picked for a fan of {history[0]}: {lead}.",
        )[shape]
    return (
        f"Your picks for today, led by {lead}.",
        f"Today's list starts with {lead}.",
        f"Picked for you today: {lead}.",
    )[shape]
