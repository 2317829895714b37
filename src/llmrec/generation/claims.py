"""Checks of a text's claims against its fact plan, used by :func:`~llmrec.generation.verify_text`.

Each check takes the verifier's shared context (the text's normalized words, the words no
allowed title covers, the target, the evidence items and the plan) and returns its
problems. They cover what the word-level checks cannot: what the item *is* ("it is a Kids
Hiking Boots" about a jacket), relation claims ("fans of X", "from the director of X")
without the plan's relation, a status ("popular") the plan lacks, immediately repeated
phrases ("zip-up zip-up"), and, per content kind, the text's shape (one sentence, two or
three, a headline of at most 60 characters, a summary whose every sentence the article
supports).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from llmrec.generation.plan import FRAME_SHAPES, attribute_strings, summary_frame
from llmrec.generation.text import (
    STOPWORDS,
    display_title,
    normalize,
    sanitize_text,
    sentences,
    title_forms,
    title_prefixes,
)
from llmrec.types import Fact, Item

__all__ = [
    "CONTENT_KINDS",
    "HEADLINE_CHARS",
    "ITEM_KINDS",
    "check_identity",
    "check_relations",
    "check_figures",
    "check_repeats",
    "check_shape",
    "check_status",
    "check_pitch_support",
    "check_support",
    "check_wording",
    "sentences",
    "describes_itself",
    "is_product",
    "text_heads",
]

#: The kinds of text a generator writes: one per item, and the list's digest.
ITEM_KINDS = ("reason", "pitch", "summary", "headline")
CONTENT_KINDS = (*ITEM_KINDS, "digest")
#: Longest headline.
HEADLINE_CHARS = 60

#: Words that say what an item is like without stating a fact of it.
_DESCRIPTORS = frozenset(
    """great good fine nice popular perfect classic fun solid strong top smart pick choice
    title item product option read watch favourite favorite must excellent lovely real true
    well loved beloved timeless memorable engaging gripping compelling thoughtful charming
    delightful enjoyable worthy worthwhile welcome natural next obvious safe sure wise bold
    fresh new little big fitting ideal useful handy practical reliable sturdy light quality
    film movie story one piece thing way addition follow up see have try buy own gem treat
    experience ride journey option upgrade essential staple companion match fit change""".split()
)
#: Where the phrase of "is a <phrase>" ends: a connective, a participle or the clause.
_PHRASE_END = (
    r"(?=\s+(?:that|which|with|from|for|by|and|to|because|where|who|if|in|on|you|your|like|"
    r"of|at|than|so|but|or|liked|loved|enjoyed|rated|watched|bought|chosen|picked|made|"
    r"directed|written|starring|featuring|set (?:in|on|at|during|among)|about|"
    r"based (?:on|in|upon|around)|told|designed|built|a change|is|was|are)\b|$)"
)
#: "it is a <phrase>": the verb, then what the text says the item is.
_COPULA = re.compile(
    r"\b(it is|it s|its|this is|that is|is|(?<!you )(?<!we )(?<!they )are|as|being|makes for|"
    r"offers)\s+(?:a|an)\s+"
    # up to eight words: "The film is a hopelessly romantic Chicago Transit Authority token
    # collector is mistaken ..." calls the film a collector
    r"((?:[a-z0-9]+\s+){0,7}?[a-z0-9]+)" + _PHRASE_END
)
#: The labels of attribute facts ("Section: Health."): no kind of item.
_LABEL_WORDS = frozenset({"section", "category", "categories", "genre", "genres", "tag", "tags"})
#: A figure listed with the words of what the item is ("a Comedy and 1988 pick").
_JOINED_FIGURE = re.compile(
    r"\b[a-z]+ (?:and|or) \d+s? (?:pick|choice|film|movie|title|one|read|item|product|option)\b"
)
#: Cue words before a history title -> the relation kinds (and attributes) that allow them.
_CUES: tuple[tuple[re.Pattern[str], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        re.compile(r"\b(?:director|directed|filmmaker)\b"),
        ("shared_attribute",),
        ("director", "directors"),
    ),
    (
        re.compile(r"\b(?:star|stars|starring|cast|actor|actress|actors)\b"),
        ("shared_attribute",),
        ("cast", "actors"),
    ),
    (
        re.compile(r"\b(?:writer|written|screenwriter)\b"),
        ("shared_attribute",),
        ("writer", "writers"),
    ),
    (re.compile(r"\b(?:author|novelist)\b"), ("shared_attribute",), ("author", "authors")),
    (re.compile(r"\b(?:brand|maker|makers|made by)\b"), ("shared_attribute",), ("brand",)),
    (
        re.compile(
            r"\b(?:fans|people|viewers|readers|shoppers|customers|buyers|those|others|users|"
            r"audiences) (?:of|who|that)\b|\bliked by\b|\bpercent\b|\bloved by\b|\benjoyed by\b"
        ),
        ("co_consumption",),
        (),
    ),
    (
        re.compile(
            r"\b(?:similar|close to|reminiscent|theme|themes|vein|echoes|recalls|much like|just like|"
            r"kind of|same spirit|akin)\b|(?<!you )(?<!you d )(?<!you ll )\blike$"
        ),
        ("similar_text", "shared_attribute"),
        (),
    ),
)
#: Status words, each with the words of a status fact that allow it ("Popular right now."
#: allows "popular", not "new").
_STATUS_WORDS = {
    "popular": ("popular", "trending"),
    "trending": ("trending", "popular"),
    "bestseller": ("popular",),
    "bestselling": ("popular",),
    "best selling": ("popular",),
    "hit": ("popular", "trending"),
    "new": ("new",),
    "brand new": ("new",),
    "latest": ("new",),
}


def _own_words(target: Item, plan: Sequence[Fact], *, with_text: bool = True) -> set[str]:
    """Words of the target itself: title, tags, attribute values and text (unless not
    ``with_text``), and the plan's facts about it (not its relation facts, which name
    other items)."""
    parts = [target.title, display_title(target.title), *target.tags]
    if with_text:
        parts.append(target.text)
    for value in target.attributes.values():
        values = value if isinstance(value, (list, tuple)) else [value]
        parts.extend(str(v) for v in values)
    # an attribute fact by its values: its label ("Section: Health.") says no kind of item
    parts.extend(
        " ".join(f.values) if f.kind == "attribute" else f"{f.text} {' '.join(f.values)}"
        for f in plan
        # a taste is the user's, not the item's
        if f.item_id is None and f.kind != "taste" and (with_text or f.kind != "description")
    )
    return _number_forms(set(normalize(" ".join(parts)).split()))


def _number_forms(words: set[str]) -> set[str]:
    """``words`` with their plural or singular forms ("accessories" <-> "accessory")."""
    out = set(words) | {w + "s" for w in words}
    out |= {w[:-1] for w in words if w.endswith("s")}
    out |= {w[:-3] + "y" for w in words if w.endswith("ies") and len(w) > 4}
    out |= {w[:-1] + "ies" for w in words if w.endswith("y") and len(w) > 2}
    return out


def _name_head(title: str) -> str:
    """The word of a product's name that says what it is: the last one that is no
    figure, unit or model code ("Headlamp 400" -> "headlamp", "Cycling Helmet MIPS" ->
    "helmet", "Kettlebell 12 kg" -> "kettlebell")."""
    raw = re.findall(r"[\w'-]+", display_title(title))
    for n in range(len(raw) - 1, -1, -1):
        word = raw[n]
        code = any(ch.isdigit() for ch in word) or (word.isupper() and len(word) > 1)
        after_figure = n > 0 and any(ch.isdigit() for ch in raw[n - 1])
        if not code and not after_figure:
            return normalize(word)
    return normalize(raw[-1]) if raw else ""


#: A text that opens with what the item is: "A two-layer waterproof shell with ...".
_OPENING_NOUN = re.compile(
    r"^(?:a|an)\s+((?:[a-z0-9]+\s+){0,5}?[a-z0-9]+)"
    r"(?=\s+(?:that|which|with|from|for|by|and|to|in|on|of|made)\b|$)"
)
#: A product's text may open without an article: "Lightweight trail shoes with ...".
_BARE_OPENING = re.compile(
    r"^((?:[a-z0-9]+\s+){0,5}?[a-z0-9]+)(?=\s+(?:that|which|with|for|made)\b)"
)
#: Breaks inside a sentence: a comma ends "is a U.S. Army officer, despondent about ...".
_CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]")
#: A comma inside a list of qualities: "a lightweight, grippy trail shoe".
_QUALITY_LIST = re.compile(
    r"\b([Aa]n?) ([\w-]+), (?!(?:and|but|or|which|who|that|so|while|whose)\b)(?=[a-z0-9])"
)


def is_product(item: Item) -> bool:
    """Whether the item is a product (it has a category, brand or price): its text is
    about the product, where a film's or an article's opens with its hero or its news."""
    return any(k in item.attributes for k in ("category", "categories", "brand", "price"))


def text_heads(item: Item) -> set[str]:
    """What the item's own text calls it: the head nouns of its first sentences' "A
    <phrase> with ..." openings and "is a <phrase>" statements. Of a product, every such
    head; of anything else, only a head that its title, tags or category name ("A hitman
    in Los Angeles ..." does not make a film a hitman)."""
    product = is_product(item)
    names = " ".join([item.title, *item.tags, *attribute_strings(item.attributes.get("category"))])
    name_words = _number_forms(set(normalize(names).split()))
    heads = set()
    for sentence in sentences(item.text or "")[:4]:
        norm = normalize(_CLAUSE_BREAK.split(sentence)[0])
        m = _OPENING_NOUN.match(norm) or (_BARE_OPENING.match(norm) if product else None)
        if m:
            heads.add(m.group(1).split()[-1])
        heads |= {m.group(2).split()[-1] for m in _COPULA.finditer(norm)}
    if product:
        return heads
    return {h for h in heads if h in name_words or any(w.endswith(h) for w in name_words)}


def describes_itself(item: Item) -> bool:
    """Whether the item's text says what the item is (a product's does; a plot that
    opens with its hero does not)."""
    return is_product(item) or bool(text_heads(item))


#: A second kind after one: "is a Comedy and a Barrister".
_AND_KIND = re.compile(r"^\s*(?:and|or) (?:a|an)\s+((?:[a-z0-9]+\s+){0,5}?[a-z0-9]+)" + _PHRASE_END)
#: ... or a bare noun phrase of two or three words that ends the clause: "is a comedy
#: and action-adventure show" (not a quality: "and compact", "and quick to pitch").
_AND_BARE = re.compile(r"^\s*(?:and|or) ((?:[a-z0-9]+\s+){1,2}[a-z0-9]+)$")
#: A whole clause of up to three words naming a second kind after a comma: "..., like a
#: backpack, and a stove" (not "..., and a barrister falls for one of them").
_AND_CLAUSE = re.compile(r"(?:and|or) (?:a|an) ((?:[a-z0-9]+ ){0,2}[a-z0-9]+)")
#: ... or the rest of one phrase after "and": "a smart and comfortable running belt".
_AND_MORE = re.compile(r"^\s*and\s+((?:[a-z0-9]+\s+){1,4}?[a-z0-9]+)" + _PHRASE_END)
_QUALITY_ENDINGS = ("ed", "able", "ible", "ly", "ing", "ful", "ous", "ive", "less")


def _kind_phrases(text: str) -> list[tuple[str, str, str]]:
    """``(verb, phrase, "")`` of every phrase the text states the item is ("is a <phrase>"),
    clause by clause (a comma ends a phrase: "is a U.S. Army officer, despondent about
    ..." calls the film an officer; not one inside a list of qualities), with a second
    one joined by "and (a)"; and ``("and", "<first> <rest>", first)`` where "and" may join
    one phrase's qualities ("a smart and comfortable running belt")."""
    out: dict[tuple[str, str, str], None] = {}
    for sentence in sentences(_QUALITY_LIST.sub(r"\1 \2 ", text)):
        verb = ""  # the sentence's last "is a ...": a later ", and a <phrase>" goes on it
        for part in _CLAUSE_BREAK.split(sentence):
            clause = normalize(part)
            more = _AND_CLAUSE.fullmatch(clause) if verb else None
            if more:  # "is a camping product, like a backpack, and a stove"
                out[(verb, more.group(1), "")] = None
            for m in _COPULA.finditer(clause):
                verb = m.group(1)
                out[(m.group(1), m.group(2), "")] = None
                rest = clause[m.end() :]
                more = _AND_KIND.match(rest)
                bare = None if more else _AND_BARE.match(rest)
                if bare and not any(
                    w in _DESCRIPTORS or w in {"to", "more"} for w in bare.group(1).split()
                ):
                    if not bare.group(1).endswith(_QUALITY_ENDINGS):
                        more = bare
                if more:
                    out[(m.group(1), more.group(1), "")] = None
                also = bare or (None if more else _AND_MORE.match(rest))
                if also:  # "is a smart and comfortable running belt": one phrase?
                    out[("and", f"{m.group(2)} {also.group(1)}", m.group(2))] = None
    return list(out)


def _memo(c: Any, key: str, make: Any) -> Any:
    """``make()`` once per verification context."""
    memo = c.__dict__.setdefault("_claims_memo", {})
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _own(c: Any) -> set[str]:
    """The target's own words with the plan's facts about it (see :func:`_own_words`)."""
    return _memo(c, "own", lambda: _own_words(c.target, c.plan) | c.alias_words)


def _heads(c: Any) -> set[str]:
    """:func:`text_heads` of the target."""
    return _memo(c, "heads", lambda: text_heads(c.target))


def _brands(c: Any) -> set[str]:
    return _memo(
        c,
        "brands",
        lambda: {normalize(v) for v in attribute_strings(c.target.attributes.get("brand"))},
    )


def check_identity(c: Any) -> list[str]:
    """What the text says the item is ("it is a <phrase>"): the phrase's head noun must
    be the item's own word (its title, tags or attributes, another spelling of a tag, or
    what its text calls it: :func:`text_heads`) or a generic one ("pick", "film"). What
    it "offers", and what a summary or a digest says, may be any word of its text."""
    own = _own(c)
    own_values = _memo(c, "own_values", lambda: _own_words(c.target, []))
    heads = _heads(c)
    loose_kinds = c.kind in ("summary", "digest")  # a summary retells its article
    kinds = _memo(
        c,
        "kinds",
        lambda: (
            own
            if loose_kinds
            else _own_words(c.target, c.plan, with_text=False) | c.alias_words | heads
        ),
    )
    product = is_product(c.target)
    joined = _JOINED_FIGURE.search(c.norm)
    if joined:
        # "A Fish Called Wanda is a Comedy and 1988 pick": a year is no kind of item
        return [f"joins a figure to what the item is ({joined.group(0)})"]
    # All words, titles included: "it is a Kids Hiking Boots" names another item.
    brands = _brands(c)
    name_head = _name_head(c.target.title)
    entries = _kind_phrases(c.text)

    def names_kind(phrase: str) -> bool:
        head = phrase.split()[-1]
        return _said(head, kinds) or head in {name_head, *c.category_words}

    # "a warm and light down jacket" is one phrase when what follows "and" ends in what
    # the item is (not "a compact stove and boils a litre of water")
    one_phrase = {first for verb, phrase, first in entries if verb == "and" and names_kind(phrase)}
    for verb, phrase, _ in entries:
        if phrase.split()[-1] in _MAKER_WORDS and verb != "offers":
            # "Kids Hiking Boots is a fun and fun-loving brand": an item is no maker
            return [f"says the item is a maker ({phrase}), not what it is"]
        if (verb == "and" and not names_kind(phrase)) or (verb != "and" and phrase in one_phrase):
            continue
        if any(phrase == t or phrase.startswith(t + " ") for t in c.target_forms):
            # "Headlamp 400 is a Headlamp 400", "First Aid Kit is a First Aid Kit, made by"
            return [f"says the item is itself ({phrase}), not what kind of item it is"]
        words = phrase.split()
        if " ".join(w for w in words if not w.isdigit()) in brands:
            # "First Aid Kit ... It is a Cascade Gear.", "It is a Summit Labs 400."
            return [f"says the item is its brand ({phrase})"]
        label = next((w for w in words if w in _LABEL_WORDS and w not in own_values), None)
        if label:
            # "is a section, Health, about ...", "is a section Sports": a fact's label
            return [f"says the item is a fact's label ({label})"]
        if phrase in c.category_values and _plural(words[-1]):
            # "Bike Light is an Accessories": a category name is not a noun for one item
            return [f"says the item is a category name ({phrase}), not a kind of item"]
        head = words[-1]
        loose = [w for w in words[:-1] if not _said(w, own)] if product else []
        if loose:
            # "is a glass insulated water bottle" of a steel bottle: a product's material,
            # make or grade is a fact (a film's "sweeping love story" is a reading of it)
            return [f"calls the item {loose[0]!r}, which its data does not say ({phrase})"]
        named = (
            c.title_words[: c.title_words.index(name_head)] if name_head in c.title_words else []
        )
        if product and head in named and not _said(head, c.category_words) and head not in heads:
            # "Mini Bike Pump is a bike": its name's head word says what it is (a shell
            # jacket's text may still call it "a waterproof shell")
            return [f"says the item is a {head}; its name says {name_head}"]
        if _said(head, own if verb == "offers" else kinds):
            continue
        return [f"says the item is something it is not ({phrase})"]
    return []


#: Words for who makes an item: the item is none of them.
_MAKER_WORDS = frozenset({"brand", "brands", "company", "manufacturer", "maker", "label"})


def _said(word: str, own: set[str]) -> bool:
    return word in STOPWORDS or word in _DESCRIPTORS or word.isdigit() or word in own


def _plural(word: str) -> bool:
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


#: Talk about the prompt rather than the item.
_META = re.compile(
    r"\b(?:the (?:details|facts|information|data) (?:are|is|say|says|show)|(?:is|are) accurate|"
    r"in the (?:section|category|facts)|the facts given|as (?:stated|listed|given)|"
    r"(?:is|are) not (?:available|given|known|listed))\b"
)
#: Words stronger than any fact: co-consumption and history facts say "liked".
_STRONGER = ("loved", "adored", "raved", "obsessed")


def check_wording(c: Any) -> list[str]:
    """Wording no fact carries: "loved" where the data says liked ("loved by 71% of the
    34 people who liked X"), a figure the user liked, talk about the prompt, the item's
    category or another item written as where it comes from ("a running shoe from
    Trail Running Shoes"), an aim of the user's no fact gives ("for your next
    adventure"), a name given as the item's brand that is not its brand."""
    own = _own(c)
    free = f" {' '.join(c.free_words)} "
    for word in _STRONGER:
        if f" {word} " in free and word not in own:
            return [f"says '{word}' where the data says liked"]
    if re.search(r"\byou (?:liked|enjoyed|loved|rated|bought) \d", c.norm):
        # "You liked 27% of the 100 people who liked Batman": a figure is no item
        return ["says the user liked a figure"]
    liked = _liked_non_item(c)
    if liked:
        return [f"says the user liked {liked!r}, which is none of their items"]
    meta = _META.search(c.norm)
    if meta and meta.group(0) not in normalize(c.target.text):
        # "and the details are accurate": the prompt talked about, not the item
        return [f"talks about its instructions ('{meta.group(0)}')"]
    for value in c.category_values:
        if re.search(rf"\bfrom (?:the )?{re.escape(value)}\b", c.norm):
            return [f"writes the category {value!r} as where the item comes from"]
    source = _from_item(c)
    if source:
        # "Road Running Shoes is a running shoe from Trail Running Shoes"
        return [f"writes {source!r} as where the item comes from"]
    aim, itself = _for_your(c)
    if aim:
        if itself:  # "Headlamp 400 is a great accessory for your 400-lumen headlamp"
            return [f"says the item is for itself ('for your {aim}')"]
        # "a great choice for your next adventure", "for your plot summary": an aim of the
        # user's that no fact and no word of theirs gives
        return [f"says what the item is for ('for your {aim}') from no fact"]
    if c.kind not in ("summary", "digest"):  # an article may name any brand it reports on
        brands, text = _brands(c), normalize(c.target.text)
        for m in _BRAND_NAME.finditer(c.text):
            name = normalize(m.group(1))
            if name == "i" or f" {name} " in f" {text} ":
                continue
            if not any(name == b or name.startswith(b + " ") for b in brands):
                # "a running shoe from the same brand, Trail Running Shoes": no brand of it
                return [f"names {m.group(1)!r} as the item's brand, which its data does not say"]
    return []


def _clauses(c: Any) -> list[str]:
    """The text's clauses (sentences cut at commas, colons, dashes), normalized."""
    return _memo(
        c,
        "clauses",
        lambda: [normalize(p) for s in sentences(c.text) for p in _CLAUSE_BREAK.split(s)],
    )


#: Words before "from <item>" that compare rather than give a source ("an upgrade from").
_COMPARING = frozenset("upgrade change step switch departure move break shift away apart".split())


def _from_item(c: Any) -> str:
    """The title of an evidence item that a clause writes as where the item comes from
    ("is a running shoe from Trail Running Shoes"), else ''."""
    forms = {form: item.title for item in c.evidence for form in title_forms(item.title)}
    if not forms:
        return ""
    names = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    pattern = re.compile(
        rf"\b(?:is|are) (?:a|an) ((?:[a-z0-9]+ ){{0,6}}?)from (?:the )?({names})\b"
    )
    for clause in _clauses(c):
        for m in pattern.finditer(clause):
            before = m.group(1).split()
            if not before or before[-1] not in _COMPARING:
                return forms[m.group(2)]
    return ""


#: "for your <aim>": the aim's words must be facts' or the user's own.
_FOR_YOUR = re.compile(
    r"\bfor your (?:next |own |upcoming |first |daily |weekly )?((?:[a-z0-9]+ ){0,2}[a-z0-9]+)"
)
_AIM_CUT = re.compile(
    r" (?:and|or|with|in|on|at|because|since|as|so|this|it|you|thanks|when|while|every|each|"
    r"after|before|during|to|from|by|of|for|that|which|is|are|will|can)\b.*"
)
#: Aims any item may serve ("for your collection").
_GENERIC_AIMS = frozenset(
    "needs collection list watchlist shelf library queue kit wardrobe closet".split()
)


def _aim_stem(word: str) -> str:
    """A light stem that joins "runs", "running" and "run", "rides" and "riding"."""
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _for_your(c: Any) -> tuple[str, bool]:
    """``(aim, itself)``: the aim of a "for your <aim>" that neither the plan (the item's
    own words, every fact's values, the user's preferences and tastes) nor the query
    holds, or that is the item itself (``itself``); ``("", False)`` when every aim holds."""
    if "for your" not in c.norm:
        return "", False
    grounded = _own(c) | {w for f in c.plan for v in f.values for w in normalize(v).split()}
    grounded |= set(normalize(c.query or "").split())
    stems = {_aim_stem(w) for w in grounded}
    itself = {_name_head(c.target.title)} | _heads(c)
    for clause in _clauses(c):
        for m in _FOR_YOUR.finditer(clause):
            words = _AIM_CUT.sub("", m.group(1)).split()
            # a participle after the aim ends it: "for your long runs holding two flasks"
            cut = next((n for n, w in enumerate(words) if n and w.endswith("ing")), len(words))
            words = words[:cut]
            aim = " ".join(words)
            if words[-1] in itself:
                return aim, True
            if words[-1] in _GENERIC_AIMS:
                continue
            if any(w not in STOPWORDS and _aim_stem(w) not in stems for w in words):
                return aim, False
    return "", False


#: A name given as a brand ("from the same brand, Cascade Gear"): the item's brand only.
_BRAND_NAME = re.compile(r"\b(?i:brand)[,:]?\s+([A-Z][\w'&-]*(?:\s+[A-Z0-9][\w'&-]*)*)")


# "you liked / enjoyed / watched <object>": the object, up to a clause's end, is the
# user's own item
_PAST_LIKING = re.compile(
    r"\byou(?:'ve| have| already| once| also)? (?:liked|enjoyed|loved|watched|saw|read|bought|"
    r"purchased|rated) ([^,.;:!?]*)",
    re.IGNORECASE,
)
_PRONOUNS = frozenset("it this that them these those both all".split())


def _liked_non_item(c: Any) -> str:
    """The words after "you liked" (enjoyed, watched, ...) when they are none of the
    user's history items, nor a value the plan says their items have ("You liked the
    altar boy", a character of the target's text); empty when every such object is."""
    forms = {f for item in c.evidence for f in title_forms(item.title) | title_prefixes(item.title)}
    values = {
        normalize(str(v))
        for f in c.plan
        if f.kind in ("shared_attribute", "taste", "preference")
        for v in f.values
        if str(v).strip()
    }
    for m in _PAST_LIKING.finditer(c.text):
        words = normalize(m.group(1)).split()
        if words[:1] in (["the"], ["a"], ["an"]) and len(words) > 1:
            article, rest = words[0], words[1:]
        else:
            article, rest = "", words
        if not rest or rest[0] in STOPWORDS or rest[0] in _PRONOUNS:
            continue  # "which you liked.", "what you liked is ...", "you liked it"
        phrase = " ".join(rest)
        with_article = f"{article} {phrase}".strip()
        if any(
            p == f or p.startswith(f + " ") or f.startswith(p + " ")  # "Mr. Holland's Opus"
            for f in forms
            for p in (phrase, with_article)
        ):
            continue
        singular = " ".join(w[:-1] if w.endswith("s") else w for w in rest)
        if any(p == v or p.startswith(v + " ") for v in values for p in (phrase, singular)):
            continue  # "you liked Thrillers": a value the plan says the user's items share
        return m.group(1).strip()
    return ""


def _history_spans(c: Any) -> list[tuple[int, int, str]]:
    """``(start, end, item id)`` of each mention of an evidence item in the text (not
    the words of a mention of the target: "Star Wars" of "Star Wars: Episode V")."""
    words = c.words
    spans: list[tuple[int, int, str]] = []
    for form in c.target_mentions:
        needle = form.split()
        spans += [(i, i + len(needle), "") for i in _find(words, needle)]
    for item in c.evidence:
        forms = title_forms(item.title) | title_prefixes(item.title)
        for form in sorted(forms, key=len, reverse=True):
            needle = form.split()
            for i in range(len(words) - len(needle) + 1):
                end = i + len(needle)
                if words[i:end] == needle and not any(s <= i and end <= e for s, e, _ in spans):
                    spans.append((i, i + len(needle), item.item_id))
    return sorted(s for s in spans if s[2])


def check_relations(c: Any) -> list[str]:
    """A history item may be cited only with a relation the plan holds: any fact about it
    for a plain "you liked X", the matching relation for "fans of X", "the director of
    X", "similar to X"; "theme" words need a similar-text fact."""
    plan: Sequence[Fact] = c.plan
    for start, end, item_id in _history_spans(c):
        facts = [f for f in plan if f.item_id == item_id]
        shown = _title_of(c.evidence, item_id)
        if not facts:
            return [f"cites {shown!r} without a relation in the plan"]
        before = " ".join(c.words[max(0, start - 7) : start])
        after = " ".join(c.words[end : end + 4])
        for pattern, kinds, attributes in _CUES:
            if not (pattern.search(before) or (not attributes and pattern.search(after))):
                continue
            if not any(
                f.kind in kinds and (not attributes or f.attribute in attributes) for f in facts
            ):
                return [f"claims a relation to {shown!r} the plan does not hold"]
    if re.search(r"\btheme", c.norm) and not any(f.kind == "similar_text" for f in plan):
        return ["claims a shared theme the plan does not hold"]
    return []


#: "liked by <figure>": the figure must be one of a co-consumption fact's.
_LIKED_BY = re.compile(r"\b(?:liked|loved|enjoyed|bought|chosen|read|watched) by (\d+)\b")


def check_figures(c: Any) -> list[str]:
    """A share or count written just before a history item's title ("58% of the 71 people
    who liked X") must be one of that item's own co-consumption figures: the numbers of one
    relation are not moved onto another item. A figure after "liked by" must be a
    co-consumption figure ("liked by 390 grams" pastes the item's weight into one)."""
    shares = {normalize(v) for f in c.plan if f.kind == "co_consumption" for v in f.values}
    for m in _LIKED_BY.finditer(c.norm):
        if m.group(1) not in shares:
            return [f"states 'liked by {m.group(1)}', which is no co-consumption figure"]
    own = {normalize(v) for f in c.plan if f.item_id is None for v in f.values}
    previous = 0
    for start, end, item_id in _history_spans(c):
        figures = {
            normalize(v)
            for f in c.plan
            if f.item_id == item_id and f.kind == "co_consumption"
            for v in f.values
        }
        window = c.words[max(previous, start - 8) : start]
        previous = end
        moved = [w for w in window if w.isdigit() and w not in figures and w not in own]
        if moved:
            shown = _title_of(c.evidence, item_id)
            return [f"states {moved[0]} of {shown!r}, which is not its figure"]
    return []


def _find(words: list[str], needle: list[str]) -> list[int]:
    n = len(needle)
    return [i for i in range(len(words) - n + 1) if n and words[i : i + n] == needle]


def _title_of(items: Sequence[Item], item_id: str) -> str:
    return next((display_title(i.title) for i in items if i.item_id == item_id), item_id)


def check_status(c: Any) -> list[str]:
    """ "Popular", "trending", "bestseller", "new" only with a status fact that says so
    (or the item's own words: "a new edition" in its text)."""
    status = " ".join(normalize(f.text) for f in c.plan if f.kind == "status").split()
    own = _own_words(c.target, [f for f in c.plan if f.kind != "status"])
    free = f" {' '.join(c.free_words)} "
    for word, allowed in _STATUS_WORDS.items():
        if f" {word} " in free and word not in own and not set(allowed) & set(status):
            return [f"states a status the plan lacks ({word})"]
    return []


def check_repeats(c: Any) -> list[str]:
    """No phrase of one to three words written twice in a row ("zip-up zip-up"); a title
    between two words parts them ("who liked Alien liked it" repeats nothing)."""
    marked = ["<title>" if covered else w for w, covered in zip(c.words, c.covered)]
    words = [w for n, w in enumerate(marked) if w != "<title>" or marked[n - 1 : n] != [w]]
    for size in (1, 2, 3):
        for i in range(len(words) - 2 * size + 1):
            first = words[i : i + size]
            if first == words[i + size : i + 2 * size] and not set(first) <= STOPWORDS:
                return [f"repeats '{' '.join(first)}'"]
    # A list naming one of the item's genres twice ("Children's, Drama and Children's",
    # "a Comedy and a 1979 comedy"): two mentions with only genres, "and", an article or
    # a year between them.
    listed = {w for tag in c.target.tags for w in normalize(tag).split()}
    listed |= {"and", "or", "a", "an"}
    for tag in c.target.tags:
        needle = normalize(tag).split()
        at = _find(words, needle) if needle else []
        for i, j in zip(at, at[1:]):
            between = words[i + len(needle) : j]
            if between and all(w in listed or w.isdigit() for w in between):
                return [f"names {tag!r} twice in one list"]
    return []


def check_pasted(c: Any) -> list[str]:
    """No fact pasted whole into the middle of a sentence ("a running shoe, Matches your
    interest in running"): a fact's capitalized first word after a lower-case word or a
    comma, where it names nothing (no title or fact value holds it)."""
    names = {w for f in c.plan for v in f.values for w in str(v).split()}
    names |= {w for item in (c.target, *c.evidence) for w in item.title.split()}
    leads = {f.text.split()[0].rstrip(":,.") for f in c.plan if f.text.strip()}
    for word in sorted(w for w in leads if w[:1].isupper() and w not in names):
        if re.search(rf"(?<=[a-z,;]) {re.escape(word)}\b", c.text):
            return [f"pastes a fact into a sentence ('{word} ...')"]
    return []


def check_shape(c: Any) -> list[str]:
    """The shape of the content kind: a reason is one sentence, a pitch two or three, a
    headline one line of at most :data:`HEADLINE_CHARS` characters that says more than
    the item's name, a digest one line."""
    kind, text = c.kind, c.text
    if kind in ("headline", "digest") and "\n" in text.strip():
        return [f"a {kind} is one line"]
    if kind == "headline":
        if len(text) > HEADLINE_CHARS:
            return [f"headline longer than {HEADLINE_CHARS} characters"]
        if not set(c.untitled_words) - STOPWORDS:  # "Beyond Sports: <title>" says something
            return ["a headline says more than the item's name"]
        return []
    n = len(sentences(text))
    if kind == "reason" and n > 1:
        return [f"{n} sentences (a reason is one)"]
    if kind == "pitch" and not 2 <= n <= 3:
        return [f"{n} sentences (a pitch has two or three)"]
    return []


def _stems(text: str) -> set[str]:
    words = normalize(text).split()
    return {w.rstrip("s") for w in words} | set(words)


#: Least share of a summary sentence's content words its article passage must hold. On
#: the benchmark's news (65 model summaries, function words aside) every sentence copied
#: or condensed held .89 and up; those that swapped or fused facts .75 ("Rivers ... are at
#: 22 percent of capacity" of reservoirs) and .83 ("which paths to build" of paths to
#: repair); a swapped subject at .88 ("The researchers wore ..." of volunteers) is caught
#: by the subject rule of :func:`check_support`.
SUPPORT_SHARE = 0.85
_FUNCTION_WORDS = frozenset(
    "that their this these those its which who has have was were are will can also been "
    "they them than more most".split()
)


#: Share of the content words of a pitch's later sentence (past its first, which the
#: other checks read) that must be words of the item's data or the plan. On the
#: benchmark's 44 model pitches of 2026-12-04 every sentence the independent checker
#: passed held .80 or more but one (.71, "a film about an ordinary man discovering ...");
#: those it did not held .30, .50 and .88 ("You'll love the story of a detective who
#: tries to make a difference" of Trainspotting; "The plot summary is available for
#: review").
PITCH_SUPPORT_SHARE = 0.75
#: Words a pitch may use of any item.
_PITCH_WORDS = frozenset("film films movie movies stars star starring story pick product".split())


def _content_words(sentence: str) -> list[str]:
    """A sentence's content words, as the support checks weigh them."""
    return [
        w
        for w in normalize(sentence).split()
        if w not in STOPWORDS
        and len(w) > 2
        and w not in _DESCRIPTORS
        and w not in {"you", "your", "article", "story", "piece", "report", "follow"}
        and w not in _FUNCTION_WORDS
    ]


def check_pitch_support(c: Any) -> list[str]:
    """A pitch's sentences after the first say what the item's data or the plan says:
    at least :data:`PITCH_SUPPORT_SHARE` of their content words are its words (title,
    text, tags, attribute values) or the plan's."""
    if c.kind != "pitch":
        return []
    values = [str(v) for value in c.target.attributes.values()
              for v in (value if isinstance(value, (list, tuple)) else [value])]  # fmt: skip
    known = _stems(
        " ".join(
            [c.target.title, c.target.text or "", *c.target.tags, *values]
            + [f"{f.text} {' '.join(map(str, f.values))}" for f in c.plan]
            + [e.title for e in c.evidence]
            + [c.query or ""]
        )
    )
    for sentence in sentences(c.text)[1:]:
        words = [w for w in _content_words(sentence) if w not in _PITCH_WORDS]
        if not words:
            continue
        held = sum(w in known or w.rstrip("s") in known for w in words)
        if held / len(words) < PITCH_SUPPORT_SHARE:
            return [f"a sentence the item's data does not support: {sentence[:60]!r}"]
    return []


def check_support(c: Any) -> list[str]:
    """A summary's every sentence must be supported by the item's text: at least
    :data:`SUPPORT_SHARE` of its content words (past the title) are words of one article
    sentence or of two adjacent ones (with the title and tags), so that two parts of the
    article are not fused into a claim neither makes ("The app is a free tool that helps
    small companies build their products" from an app and, paragraphs later, small
    companies' tools) and one word is not swapped for another."""
    if c.kind != "summary":
        return []
    around = _stems(" ".join([c.target.title, *c.target.tags]))
    parts = [_stems(s) for s in sentences(c.target.text or "")] or [set()]
    windows = [around | a | b for a, b in zip(parts, [*parts[1:], set()])]
    # The plan's opening sentence about the reader (checked by the other checks) needs
    # no article words: it is taken off the front, as written with the history titles
    # shown raw or as a prompt shows them.
    story = any(f.kind == "attribute" and f.attribute == "section" and f.values for f in c.plan)
    body = c.text.strip()
    frames = {
        summary_frame(c.plan, names, story=story, shape=k)
        for names in (
            {e.item_id: display_title(e.title) for e in c.evidence},
            {e.item_id: sanitize_text(display_title(e.title), 100) for e in c.evidence},
        )
        for k in range(FRAME_SHAPES)
    } - {""}
    for frame in sorted(frames, key=len, reverse=True):
        if body.startswith(frame):
            body = body[len(frame) :]
            break
    for sentence in sentences(body):
        words = _content_words(sentence)
        if not words:
            continue
        held = max(
            ([w in source or w.rstrip("s") in source for w in words] for source in windows),
            key=sum,
        )
        # its subject (the first content word) too: "The researchers wore sleep trackers"
        # of an article whose volunteers wore them
        if sum(held) / len(words) < SUPPORT_SHARE or not held[0]:
            return [f"a sentence the article does not support: {sentence[:60]!r}"]
    return []
