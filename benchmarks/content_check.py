"""The independent checker of ``benchmarks/content.py``: claims in a text against the data.

It shares no code with llmrec's verifier (``llmrec.generation.verify``) or its fact plan:
it reads only the catalog (items and their attributes), the events and the users' stated
preferences, and decides from them what is true. Rules:

* **Claims**: a text is split into sentences (``.``, ``!``, ``?``) and each sentence into
  clauses (``;``, ``:``, dashes, ``, and``, ``, but``, ``, so``, ``, while``); catalog titles
  are masked first so a title with "and" in it stays whole (a title's forms: as written,
  with a trailing article moved to the front, and each of a title and its alternative name
  in parentheses: "Seven (Se7en)" is "Seven" or "Se7en"). Another item's title is the
  target's own data, not a mention of that item, where the text copies it with a
  neighbouring word on each side (or two on one side) from the target's own text ("a War
  Room full of politicians", "Directed by Angela Beeching.") or where it is part of a
  longer name the target's people or text give ("Michael" in "directed by Michael
  Bay"). A clause whose words are
  all function words or recommendation talk (:data:`GENERIC`: "great", "you", "enjoy",
  ...) states nothing checkable and is not counted. Any other clause is a claim; it is
  **supported** when none of the false-claim classes below fires in it and at least 75%
  of its content words (lightly stemmed) occur in the data about the target (title, text,
  attribute values; for a digest, any listed item; for a summary, the title, attribute
  values and the two adjacent sentences of the article that share most words with it) or, in a clause about the user ("you",
  a history title), about this user (history items' titles, attributes, their own words).
  ``popular``/``trending`` hold for an item at least as many users had as the median item.
* **False-claim classes** (counted once per text that has them):
  ``other_item`` a catalog title other than the target's and the user's history items;
  ``other_category`` a category/genre/tag word or a type word (a shop title's last word,
  e.g. "boots") that the target does not have, in a clause that says nothing about the
  user or in what the text says the item is ("it is a ...");
  ``user_tags_as_item`` the same, when the word is one of the user's own tags;
  ``unsupported_relation`` a history item joined to the target by a relation the data
  does not hold: "from the director of X" needs a shared director, "fans of X" / "people
  who liked X" users who had both (at least 5% of X's), "like / similar to / close to X"
  the same category or section, two shared genres or tags, or a shared person or brand
  (what the items are, not who bought them), any other mention any shared value or such
  fans; ``invented_number`` a number (price, figure, year, percentage) in neither the
  target's nor the user's data nor a true co-consumption figure (count or share, of the
  people who liked both items or of those who had both); ``invented_name`` a capitalized
  name (person, place, brand) in neither, or a person named in a role (directed by,
  written by, starring) the target's data does not give them, unless its own text has the
  role phrase word for word ("film director Marty DiBergi", a character), or "made by" a
  person its text names said of another thing the text tells of ("The wager is made by
  Professor Henry Higgins"; a brand named as such always needs the brand attribute);
  ``repeated_phrase`` a word written twice in a row or a
  repeated 3-word phrase; ``false_history`` "you liked / bought X" where the user's events
  hold no liking (a click, like, purchase or a 4-5 star rating; a view or a 3-star rating
  is not one) or no purchase of X, or "you liked / enjoyed / watched <words>" whose first
  word is no title and no tag, genre or category of the user's items nor a word of their
  own ("You liked the altar boy"); ``false_taste`` "a change from (unlike) your usual X"
  (the user's usual kind; "Beyond X: ..." opening a headline) where X is not the category, section or genre value of at least two and at least
  half of the user's liked items, or is the target's own (then it is no change); a true
  one ("a change from your usual Running picks") is a supported statement about the user;
  ``false_identity`` what the text says the item is ("it is a <phrase>", read past a
  comma between qualities, not past a participle's phrase: "a harness | designed for
  climbing", "a Comedy|, liked by ..."; and a second "and a <phrase>") ends in a
  noun that is none of the target's title, attribute or tag words, nor the noun its
  text opens with as what it is, nor a word for any item ("pick", "film", "fit"): "Courage
  Under Fire is a U.S. Army officer", "A Fish Called Wanda is a Comedy and a Barrister";
  or ends in the target's title after words its data lacks ("a soft Foam Roller"; "a firm
  Foam Roller" as its text says is true); or is the item's brand ("It is a Cascade Gear"), or another item is where it comes from
  ("a running shoe from Trail Running Shoes"; not a comparison: "an upgrade from X"). What
  is said of another thing the target's text tells of ("the town is a front" in Cop Land)
  is not what the item is. ``target_not_named`` (reasons and pitches only) the target's title absent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STOP = frozenset(
    """
a an the and or but so if then than as at by for from in into of on onto to with without
about over under after before since because while when where which who whom whose that
this these those it its it's is are was were be been being am do does did has have had
having not no nor very too also just only even still yet ever here there their them they
he she his her him we our us i me my mine yours your you you're you'll you've one ones
can could may might will would shall should must let lets let's up out off down again
more most much many some any each every all both either neither other another such own
same s t don't isn't can't won't what how why
""".split()
)
GENERIC = frozenset(
    """
like likes liked love loves loved enjoy enjoys enjoyed enjoying fan fans favorite
favourite great perfect ideal excellent good nice best better fine solid top strong
choice choices pick picks option options selection recommend recommended recommendation
suggest suggestion try check add want need looking look seem seems sure worth definitely
really truly simply well quite pretty fun exciting interesting amazing wonderful classic
must next new today now right way ways thing things something everything anything time
times day days people person others folks customers shoppers readers viewers audience
buyers reader viewer customer shopper user users watch watched watching read reading
buy bought buying purchase purchased use used using wear wearing make makes made keep
get gets got give gives go goes going take takes help helps helpful based taste tastes
interest interests interested history recent recently past previous similar fans'
item items product products article articles story stories film films movie movies
gear pick list lists collection lineup here's there's got set fit fits suit suits
appeal appeals appealing enjoyable worthwhile great-looking high quality match matches matching
cost costs priced price only just under
brand brands tag tags section sections category categories genre genres description
descriptions share shares shared sharing same topic topics theme themes kind type
chosen choose led lead leads leading including include includes featuring feature
features start starts starting headed topped round-up roundup
released release releases runs run-time runtime minutes minute year years rated rating
directed director directors written writer writers starring stars cast made
""".split()
)
# Status words: true of an item that at least as many users had as the median item.
POPULAR = frozenset({"popular", "trending", "bestseller", "best-selling", "favourite", "hit"})
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-.]*[A-Za-z0-9]|[A-Za-z0-9]")
_NUMBER = re.compile(r"(?<![A-Za-z])\$?\d[\d,]*(?:\.\d+)?%?")
# (not after an initial: "A U.S. Army officer")
_SENTENCE = re.compile(r"(?<!\b[A-Z]\.)(?<=[.!?])[\"')\]]*\s+")
_CLAUSE = re.compile(r"\s*(?:;|:|\s[-\u2013\u2014]\s|\u2014|,\s*(?:and|but|so|while|which)\s)\s*")
_MASK = re.compile(r"\u27e6([TH]|O)(\d+)\u27e7")
# "it is a <phrase>": what the text says the item is, whoever else the clause mentions.
_IDENTITY_END = (
    r"(?=\s+(?:for|that|which|who|with|from|by|to|and you|because|since|if|so)\b|[,;!?]"
    # "and" ends it before a verb or a quality ("a compact stove and boils ..."), not
    # between qualities ("a smart and comfortable running belt")
    r"|\s+and\s+(?:[a-z]+s|easy|quick|simple|ready|made|built|designed|perfect|ideal)\b"
    r"|(?<!\b[A-Z])\.(?!\w)|$)"
)
_IDENTITY = re.compile(
    r"\b(?:is|it's|are|was|makes it)\s+(?:a|an|the|one of the)\s+(.+?)" + _IDENTITY_END,
    re.I,
)
# "... and a <phrase>": a second thing the text says the item is ("a Comedy and a Barrister")
_AND_A = re.compile(r"^\s+and\s+(?:a|an)\s+(.+?)" + _IDENTITY_END, re.I)
# A past participle that opens a phrase after a noun: "a harness | designed for climbing",
# "a Comedy, | liked by 25% of ..." (not a noun ending in -eed: "a bike built for speed").
_PAST = r"(?:[a-z]{2,}[a-df-z]ed|made|built|known|sold|worn|chosen|written|seen|grown|given)"
_AFTER_PAST = r"(?:by|for|to|with|from|in|on|at|of|as|after)\b"
# a comma between qualities: "a lightweight, grippy trail shoe" is one phrase (not a comma
# before a participle's phrase: "a Comedy, liked by ...")
_QUALITIES = re.compile(
    r"\b([Aa]n?) ([\w-]+), (?!(?:and|but|or|which|who|that|so)\b)"
    rf"(?!{_PAST}\s+{_AFTER_PAST})(?=[a-z])"
)
# A text that opens with what its item is: "A 22-litre pack with a rain cover."
_OPENS_AS = re.compile(
    r"^(?:A|An)\s+((?:[\w'-]+\s+){0,4}?[\w'-]+)\s+(?:that|which|with|for|from|by|of|made|to)\b"
)
# "is a running shoe from <another item>": an item is not where another comes from
_FROM_ITEM = re.compile(
    r"\b(?:is|are|it's)\s+(?:a|an)\s+([^\u27e6.,;:]*?)\bfrom\s+(?:the\s+)?\u27e6[HO]\d+\u27e7", re.I
)
# ... unless the words before "from" compare ("an upgrade from X", "a change from X")
_COMPARE = frozenset("upgrade change step switch departure move break shift away apart".split())
# Where the noun phrase of "it is a <phrase>" ends: "a Drama film | directed by ...", "a
# harness | designed" (the phrase ended at "for climbing"; not "a well designed" or "a
# cleverly designed": an adverb's participle comes before the noun).
_PARTICIPLE = re.compile(
    r"\s(?:directed|written|starring|featuring|set|made|about|of|in|on|at|where|whose)\b"
    rf"|(?<!ly)(?<!\bwell)\s{_PAST}(?=\s+{_AFTER_PAST}|\s*$)",
    re.I,
)
# What the words after it are said of, the noun just before them (and "is" / "was"): "...
# discovers the town | is a front", "The wager is | made by ...".
_SUBJECT = re.compile(
    r"\b(?:the|a|an|his|her|its|their|this|that)\s+(?:[\w'-]+\s+){0,2}?([\w'-]+)\s+"
    r"(?:(?:is|was|are|were)\s+)?$",
    re.I,
)
# Stands for the target's title in what the text says the item is ("a firm <title>").
_TITLE_MARK = "\u27e6T\u27e7"
# Nouns for any item ("X is a fit for ...", "a treat"), beside GENERIC's
_KINDS = frozenset(
    """film movie story article piece product item title fit match treat gem
addition upgrade companion essential staple reminder follow-up favourite favorite change
step pair set one kind sort type bit tale read classic hit""".split()
)
# "directed by X", "written by X", "starring X": the name must hold that role in the data.
_ROLES = (
    (
        re.compile(
            r"\b(?i:directed by|a film by|from director|director)\s+((?:[A-Z][\w'.-]*\s?){1,3})"
        ),
        ("director",),
    ),
    (
        re.compile(r"\b(?i:written by|writer|screenplay by)\s+((?:[A-Z][\w'.-]*\s?){1,3})"),
        ("writer",),
    ),
    (
        re.compile(
            r"\b(?i:starring|stars|star|featuring|with actors?)\s+((?:[A-Z][\w'.-]*\s?){1,3})"
        ),
        ("cast",),
    ),
    (re.compile(r"\b(?i:brand)\s*,?\s+((?:[A-Z][\w'.&-]*\s?){1,3})"), ("brand",)),
    (
        re.compile(r"\b(?i:made by|maker)\s*,?\s+((?:[A-Z][\w'.&-]*\s?){1,3})"),
        ("brand", "director", "writer", "cast", "people", "author"),
    ),
)
# "you liked <history item>": what the user did with it
_USER_DID = re.compile(
    r"\byou(?:'ve| have| already| once)?\s+(liked|loved|enjoyed|bought|purchased)\s+(?:the\s+)?$",
    re.I,
)
_USER_DID_ANY = re.compile(
    r"\byou(?:'ve| have| already| once| also)?\s+(?:liked|loved|enjoyed|bought|purchased|watched|"
    r"read)\s+(?:(?:the|a|an)\s+)?",
    re.I,
)
_PRONOUNS = frozenset("it this that them these those both all".split())
_USER = frozenset({"you", "your", "you're", "you've", "you'll", "yours"})
_RELATION = {
    "director": re.compile(r"(director|directed|filmmaker|maker)s?\W+(?:\w+\W+){0,3}$", re.I),
    "cast": re.compile(r"(star|stars|starring|actor|actress|cast)\W+(?:\w+\W+){0,3}$", re.I),
    "fans": re.compile(
        r"(fans|people|customers|readers|viewers|others|those|who)\W+(?:\w+\W+){0,3}$", re.I
    ),
    "brand": re.compile(r"(brand|maker|makers|made by)\W+(?:\w+\W+){0,3}$", re.I),
    "like": re.compile(r"(like|similar|reminiscent|close|spirit|same)\W+(?:\w+\W+){0,2}$", re.I),
}


def stem(word: str) -> str:
    """A light stem: lowercase, no possessive, no plural, no -ing/-ed."""
    w = word.lower().strip(".'-")
    w = w[:-2] if w.endswith("'s") else w
    if len(w) >= 5 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) >= 5 and w.endswith(("sses", "xes", "zes", "ches", "shes")):
        return w[:-2]
    if len(w) >= 4 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    if len(w) >= 6 and w.endswith("ing"):
        return w[:-3]
    if len(w) >= 5 and w.endswith("ed"):
        return w[:-2]
    return w


def _parts(word: str) -> list[str]:
    """The stems of a hyphenated word's parts (the word itself when it has none)."""
    parts = [stem(p) for p in word.split("-") if p]
    return parts if len(parts) > 1 else [word]


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def numbers(text: str) -> set[float]:
    out = set()
    for match in _NUMBER.findall(text):
        try:
            out.add(round(float(match.strip("$%").replace(",", "")), 2))
        except ValueError:
            continue
    return out


def _values(value: Any) -> Iterable[str]:
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _values(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _values(v)
    elif value is not None:
        yield str(value)


# Where a headline-style title's first clause ends: "Marathon record falls | on a cold
# morning", "Walking lowers heart risk|, study finds".
_CLAUSE_END = re.compile(r",\s|\s(?=(?:on|in|at|after|with|for|as|from|over|amid)\s)")


_ARTICLE = re.compile(r"^(.*), (The|A|An|Il|La|Le|Les|L'|El|Los|Las|Der|Die|Das|Det|O)$")
# A title's alternative name in parentheses at its end: "Seven (Se7en)", "Hate (Haine, La)".
_ALTERNATIVE = re.compile(r"^(.+?)\s*\(([^()]+)\)$")


def title_forms(title: str) -> list[str]:
    """A title as written and with a trailing article moved to the front ("Postino, Il"
    -> "Il Postino"), no year; a title that ends in its alternative name in parentheses
    ("Seven (Se7en)", as ML-100K writes many) also gives each name alone ("Seven",
    "Se7en"), each with its article moved the same way; then, for a title of five or more
    words, each leading clause of two or more words and 12 or more characters (a short
    reference to an article: "Marathon record falls")."""
    base = re.sub(r"\s*\(\d{4}\)\s*$", "", title).strip()
    forms = [base]
    alternative = _ALTERNATIVE.match(base)
    names = [alternative.group(1), alternative.group(2)] if alternative else [base]
    for name in names:
        if name != base:
            forms.append(name)
        match = _ARTICLE.match(name)
        if match:
            forms.append(f"{match.group(2)} {match.group(1)}")
            forms.append(match.group(1))
        elif not alternative and len(name.split()) >= 5:
            for cut in _CLAUSE_END.finditer(name):
                head = name[: cut.start()].strip()
                if len(head.split()) >= 2 and len(head) >= 12:
                    forms.append(head)
    return list(dict.fromkeys(f for f in forms if f))


@dataclass
class Truth:
    """What the data says: items, each user's history and words, co-consumption."""

    items: dict[str, Any]  # item_id -> Item
    history: dict[str, list[str]]
    user_words: dict[str, str]
    users_of: dict[str, set[str]] = field(default_factory=dict)
    likers_of: dict[str, set[str]] = field(default_factory=dict)
    liked: dict[str, set[str]] = field(default_factory=dict)  # user -> items they liked
    bought: dict[str, set[str]] = field(default_factory=dict)
    people_fields: tuple[str, ...] = ("director", "cast", "writer", "people", "brand")
    tag_fields: tuple[str, ...] = ("genres", "tags", "category", "section")

    @classmethod
    def build(cls, items: Iterable[Any], events: Iterable[Any]) -> Truth:
        truth = cls({i.item_id: i for i in items}, {}, {})
        for e in events:
            if e.item_id is None:
                truth.user_words[e.user_id] = (
                    truth.user_words.get(e.user_id, "") + " " + (e.text or "")
                )
                continue
            truth.history.setdefault(e.user_id, [])
            if e.item_id not in truth.history[e.user_id]:
                truth.history[e.user_id].append(e.item_id)
            truth.users_of.setdefault(e.item_id, set()).add(e.user_id)
            # "liked": a click, like or purchase, or a rating of 4 or 5 (not a view, a
            # skip, a dislike or a 3-star rating)
            if e.kind in ("click", "like", "purchase") or (
                e.kind == "rate" and (e.value or 0) >= 4
            ):
                truth.likers_of.setdefault(e.item_id, set()).add(e.user_id)
                truth.liked.setdefault(e.user_id, set()).add(e.item_id)
            if e.kind == "purchase":
                truth.bought.setdefault(e.user_id, set()).add(e.item_id)
        truth._index()
        return truth

    def _index(self) -> None:
        self.by_title: dict[str, set[str]] = {}
        for iid, item in self.items.items():
            for form in title_forms(item.title):
                self.by_title.setdefault(form, set()).add(iid)
        self.titles: list[tuple[str, str]] = sorted(
            ((form, iid) for iid, item in self.items.items() for form in title_forms(item.title)
             if len(form) >= 4), key=lambda p: -len(p[0]))  # fmt: skip
        self.vocab = {iid: self._item_vocab(item) for iid, item in self.items.items()}
        self.kinds = {iid: self._kind_vocab(item) for iid, item in self.items.items()}
        self.tag_words = {iid: self._tags(item) for iid, item in self.items.items()}
        self.all_tags = set().union(*self.tag_words.values()) if self.tag_words else set()
        # what kind of thing an item is: a shop title's last word ("boots"), where items
        # have a category (a film's or an article's title says no such thing)
        self.type_words = {stem(words(f)[-1]) for f, iid in self.titles
                           if words(f) and "category" in self.items[iid].attributes}  # fmt: skip
        names = set()
        for item in self.items.values():
            for f in self.people_fields:
                names |= {stem(w) for v in _values(item.attributes.get(f)) for w in words(v)}
        self.names = names
        # each item's own text and its people as token sequences, for what a text copies
        # from them (:func:`_own_data`)
        self.own_text = {iid: _sequence(item.text) for iid, item in self.items.items()}
        self.people_of = {iid: [_sequence(v) for f in self.people_fields
                                for v in _values(item.attributes.get(f))]
                          for iid, item in self.items.items()}  # fmt: skip

    def _tags(self, item: Any) -> set[str]:
        out = set()
        for f in self.tag_fields:
            for v in _values(item.attributes.get(f)):
                out |= {stem(w) for w in words(v)}
        return out

    def _kind_vocab(self, item: Any) -> set[str]:
        """What the item may be called: its title's words, its tags, genres, category or
        section, its other attribute words, and the noun its text opens with when that
        says what it is ("A 22-litre pack with ...", not "A U.S. Army officer, despondent
        ...": a film's description opens with its hero)."""
        text = " ".join([item.title, *_values(dict(item.attributes))])
        out = {stem(w) for w in words(text)}
        opening = _OPENS_AS.match(item.text or "")
        if opening:
            out.add(stem(words(opening.group(1))[-1]))
        return out

    def _item_vocab(self, item: Any) -> set[str]:
        text = " ".join([item.title, item.text, *_values(dict(item.attributes))])
        return {stem(w) for w in words(text)}

    def item_numbers(self, item_id: str) -> set[float]:
        item = self.items[item_id]
        found = numbers(" ".join([item.title, item.text]))
        for v in _values(dict(item.attributes)):
            found |= numbers(v)
        return found

    def is_popular(self, item_id: str) -> bool:
        counts = sorted(len(self.users_of.get(i, ())) for i in self.items)
        return len(self.users_of.get(item_id, ())) >= counts[len(counts) // 2]

    def relation(self, history_id: str, target_id: str, kind: str) -> bool:
        """Whether the data holds ``kind`` between a history item and the target."""
        a, b = self.items[history_id], self.items[target_id]
        if kind in ("director", "cast"):
            fields = ("director", "writer") if kind == "director" else ("cast",)
            return any(set(_values(a.attributes.get(f))) & set(_values(b.attributes.get(f)))
                       for f in fields)  # fmt: skip
        of_x = self.users_of.get(history_id, set())
        both = of_x & self.users_of.get(target_id, set())
        # "fans of X": at least 5% of X's users had the target too
        fans = bool(both) and len(both) >= 0.05 * len(of_x)
        if kind == "fans":
            return fans
        if kind == "brand":
            return bool(
                set(_values(a.attributes.get("brand"))) & set(_values(b.attributes.get("brand")))
            )
        people = any(set(_values(a.attributes.get(f))) & set(_values(b.attributes.get(f)))
                     for f in ("director", "cast", "writer", "brand"))  # fmt: skip
        same = any(a.attributes.get(f) is not None and a.attributes.get(f) == b.attributes.get(f)
                   for f in ("category", "section"))  # fmt: skip
        shared = sum(len(set(_values(a.attributes.get(f))) & set(_values(b.attributes.get(f))))
                     for f in ("genres", "tags"))  # fmt: skip
        # "like X": same category/section, two shared genres/tags, a shared person or brand
        # (what the items are, not who bought them)
        like = same or shared >= 2 or people
        # a plain mention ("shares its tags, running, with X"): any shared value, or "fans"
        return like if kind == "like" else like or shared >= 1 or fans

    def figures(self, history_id: str, target_id: str) -> set[float]:
        """True co-consumption figures: counts and percentages, of the people who had
        both items (any event) or of those who liked both."""
        out: set[float] = set()
        for table in (self.users_of, self.likers_of):
            of_x = table.get(history_id, set())
            both = of_x & table.get(target_id, set())
            out |= {float(len(of_x)), float(len(both))}
            if of_x:
                pct = 100.0 * len(both) / len(of_x)
                out |= {float(round(pct)), float(int(pct)), float(round(pct)) + 1,
                        float(round(pct)) - 1, round(pct, 1)}  # fmt: skip
        return out


@dataclass
class Verdict:
    """The checker's decision on one text."""

    claims: int = 0
    supported: int = 0
    flags: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    cites_user: bool = False

    @property
    def fully_supported(self) -> bool:
        return self.claims == self.supported and not self.flags

    def to_dict(self) -> dict[str, Any]:
        return {"claims": self.claims, "supported": self.supported, "flags": sorted(self.flags),
                "notes": self.notes, "cites_user": self.cites_user,
                "fully_supported": self.fully_supported}  # fmt: skip


# Tokens compared for a verbatim copy: words (with inner apostrophes, dots and hyphens:
# "Phantom's", "U.S") and each punctuation mark, lowercased.
_WORD_TOKEN = re.compile(r"\w[\w'\u2019.-]*\w|\w")
_TOKEN = re.compile(_WORD_TOKEN.pattern + r"|[^\w\s]")
# The capitalized words (and initials) just before and just after a title match: the rest
# of a person's name it may be part of ("H. | Michael | Walls", "directed by Michael | Bay")
_NAME_BEFORE = re.compile(r"(?:(?<![\w.'-])(?:[A-Z]\.|[A-Z][\w'-]*)\s+)+$")
_NAME_AFTER = re.compile(r"(?:\s+(?:[A-Z]\.|[A-Z][\w'-]*(?![\w'-])))+")


def _sequence(text: str | None) -> str:
    """A text's tokens (:data:`_TOKEN`) joined by single spaces, with a space either side
    (so that ``_sequence(a) in _sequence(b)`` says ``a``'s words occur in ``b`` in order)."""
    return " " + " ".join(_TOKEN.findall((text or "").lower())) + " "


def _copied(own: str, text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` with a neighbouring word on each side, or two on one
    side, occurs verbatim in ``own`` (a :func:`_sequence`)."""
    spans = [m.span() for m in _WORD_TOKEN.finditer(text)]
    before = [s for s in spans if s[1] <= start]
    after = [s for s in spans if s[0] >= end]
    for left, right in ((1, 1), (2, 0), (0, 2)):
        if len(before) < left or len(after) < right:
            continue
        a = before[-left][0] if left else start
        b = after[right - 1][1] if right else end
        if _sequence(text[a:b]) in own:
            return True
    return False


def _in_name(truth: Truth, targets: set[str], text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is part of a longer name (the capitalized words around
    it) that the targets' people or own texts give: "Michael" in "directed by Michael
    Bay" where Michael Bay is the director."""
    left = _NAME_BEFORE.search(text, 0, start)
    right = _NAME_AFTER.match(text, end)
    firsts = [m.start() for m in _WORD_TOKEN.finditer(text, left.start(), start)] if left else []
    lasts = [m.end() for m in _WORD_TOKEN.finditer(text, end, right.end())] if right else []
    for a in [*firsts, start]:
        for b in [end, *lasts]:
            if (a, b) == (start, end):
                continue
            name = _sequence(text[a:b])
            if any(name in truth.own_text[t] or any(name in p for p in truth.people_of[t])
                   for t in targets):  # fmt: skip
                return True
    return False


def _own_data(truth: Truth, targets: set[str], text: str, match: re.Match) -> bool:
    """Whether a match of another item's title is the targets' own data, not a mention of
    that item: copied with its neighbouring words from a target's own text ("a War Room
    full of politicians", "Directed by Angela Beeching.") or part of a person's name that
    a target's data gives ("directed by Michael Bay")."""
    start, end = match.span()
    return any(_copied(truth.own_text[t], text, start, end) for t in targets) or _in_name(
        truth, targets, text, start, end
    )


def _mask(truth: Truth, text: str, targets: set[str], history: list[str]) -> tuple[str, dict]:
    """Catalog titles replaced by ``⟦T0⟧`` (target), ``⟦Hn⟧`` (history), ``⟦On⟧`` (other);
    a history or other item's title left as written where it is the targets' own data
    (:func:`_own_data`)."""
    lower = text.lower()
    slots: dict[str, str] = {}
    for form, iid in truth.titles:
        if form.lower() not in lower:
            continue
        flags = 0 if " " not in form else re.I
        pattern = re.compile(r"(?<![\w\u27e6])" + re.escape(form) + r"(?![\w\u27e7])", flags)
        if not pattern.search(text):
            continue
        # catalogs repeat titles (ML-100K lists "Ulee's Gold" twice): any item of the name
        same = truth.by_title.get(form, {iid})
        role = "T" if same & targets else "H" if same & set(history) else "O"
        iid = min(same & targets or same & set(history) or same)
        slot = f"\u27e6{role}{len(slots)}\u27e7"

        def replace(match: re.Match, slot: str = slot, role: str = role, text: str = text) -> str:
            if role != "T" and _own_data(truth, targets, text, match):
                return match.group(0)
            return slot

        masked = pattern.sub(replace, text)
        if masked == text:
            continue
        slots[slot] = iid
        text = masked
        lower = text.lower()
    return text, slots


def _repeats(masked: str) -> list[str]:
    tokens = [w.lower() for w in re.findall(r"\u27e6\w+\u27e7|[\w'-]+", masked)]
    # a word twice in a row, not across a stop ("Ancient Seeds: Seeds that sprout")
    doubled = re.findall(r"(?=(?<![\w'-])([\w'-]+)\s+([\w'-]+)(?![\w'-]))", masked.lower())
    out = [f"'{a} {b}'" for a, b in doubled
           if a == b and not a.isdigit() and a not in ("very", "ha")]  # fmt: skip
    grams = Counter(zip(tokens, tokens[1:], tokens[2:]))
    out += [" ".join(g) for g, n in grams.items() if n > 1 and any(w not in STOP for w in g)]
    return out


#: Capitalized words that name no one: "I", and a pronoun's contraction opening a sentence.
_CAPITAL_PRONOUNS = frozenset(
    "I I'm I'd I've He's She's It's They're We're You're He'd She'd They've We've".split()
)


def _names_in(clause: str, sentence_start: bool) -> list[tuple[str, bool]]:
    """Capitalized words of a clause with whether each opens the sentence (tokens as
    :func:`words` splits the data, so "U.S." is one word, as in an item's text)."""
    out = []
    for n, word in enumerate(words(clause)):
        if word[0].isupper() and word not in _CAPITAL_PRONOUNS:
            out.append((word, n == 0 and sentence_start))
    return out


def check_text(truth: Truth, text: str, kind: str, user: str, target: str | None,
               listed: Iterable[str] = (), extra_numbers: Iterable[float] = ()) -> Verdict:  # fmt: skip
    """Split ``text`` into claims and check each against ``truth``; see the module doc.

    ``target`` is the item the text is about (``None`` for a digest, whose ``listed``
    items all count as its subject); ``extra_numbers`` may be stated too (a list's size).
    """
    listed = list(listed)
    verdict = Verdict()
    history = truth.history.get(user, [])
    masked, slots = _mask(truth, text, {target, *listed} - {None}, history)
    masked = _usual_kinds(truth, verdict, masked, user, target)
    user_vocab = {stem(w) for w in words(truth.user_words.get(user, ""))}
    user_tags: set[str] = set()
    for h in history:
        user_vocab |= truth.vocab[h]
        user_tags |= truth.tag_words[h]
    target_vocab = truth.vocab.get(target, set()) if target else set()
    for i in listed:  # a list introduction may state what any listed item has
        target_vocab = target_vocab | truth.vocab[i]
    allowed = set(extra_numbers) | numbers(truth.user_words.get(user, ""))
    for i in listed:
        allowed |= truth.item_numbers(i)
    if target:
        allowed |= truth.item_numbers(target)
        for h in history:
            allowed |= truth.item_numbers(h) | truth.figures(h, target)
    for phrase in _repeats(masked):
        verdict.flags.add("repeated_phrase")
        verdict.notes.append(f"repeated: {phrase}")
    if kind in ("reason", "pitch") and target and not _named(truth, masked, slots, target):
        verdict.flags.add("target_not_named")
    pref = {stem(w) for w in words(truth.user_words.get(user, ""))} - {stem(w) for w in STOP}
    # A summary's sentence is grounded in one passage, two adjacent article sentences (and
    # the item's title and attributes), not in words from anywhere in the article.
    passages = _passages(truth.items[target]) if kind == "summary" and target else []
    for sentence in (s for s in _SENTENCE.split(masked.strip()) if s.strip()):
        vocab = target_vocab
        if passages:
            said = {stem(w) for w in words(_MASK.sub(" ", sentence))}
            vocab = max(passages, key=lambda p: len(said & p)) | truth.kinds[target]
        for n, clause in enumerate(c for c in _CLAUSE.split(sentence) if c and c.strip()):
            _check_clause(truth, verdict, clause, n == 0, slots, target, vocab, user_vocab,
                          user_tags, allowed, kind, [target] if target else listed,
                          truth.liked.get(user, set()), truth.bought.get(user, set()),
                          user_tags | pref)  # fmt: skip
    text_stems = {stem(w) for w in words(_MASK.sub(" ", masked))}
    verdict.cites_user = (
        verdict.cites_user  # a true "your usual X" (_usual_kinds)
        or any(slot[1] == "H" for slot in slots)
        or bool(text_stems & pref)
        or (bool(text_stems & _USER) and bool(text_stems & user_tags))
    )
    return verdict


def _passages(item: Any) -> list[set[str]]:
    """The stems of every two adjacent sentences of an item's text."""
    parts = [{stem(w) for w in words(p)} for p in _SENTENCE.split(item.text or "") if p.strip()]
    return [a | b for a, b in zip(parts, [*parts[1:], set()])] or [set()]


# "a change from your usual X" / "unlike your usual X": a contrast with the user's usual
# kind (a bare "your usual X" is left to the other rules: "is your usual X" says what it is)
# "Beyond Sports: <title>" opening a headline says the same in two words
_CONTRAST = r"(?:\b(?:(?:a|as a) change from|unlike|beyond) your usual|^\s*beyond(?=\s[^.;!?,]*:))"
_USUAL = re.compile(_CONTRAST + r"\s+([^.;:!?,]*)", re.I)
_KIND_FIELDS = ("category", "section", "genres")
_KIND_NOUNS = frozenset("stories story picks reads items choices titles films movies products "
                        "articles gear kit".split())  # fmt: skip


def _usual_kinds(truth: Truth, verdict: Verdict, masked: str, user: str,
                 target: str | None) -> str:  # fmt: skip
    """Check each "your usual X" against the user's liked items (see ``false_taste``);
    a true one is counted as a supported claim and taken out of the text."""
    liked = [i for i in truth.history.get(user, []) if i in truth.liked.get(user, set())]
    own = set()
    if target:
        own = {v.lower() for f in _KIND_FIELDS
               for v in _values(truth.items[target].attributes.get(f))}  # fmt: skip
    out = masked
    for match in _USUAL.finditer(masked):
        said = words(match.group(1))
        best = None
        for f in _KIND_FIELDS:
            counts = Counter(v.lower() for i in liked
                             for v in set(_values(truth.items[i].attributes.get(f))))  # fmt: skip
            for value, count in counts.items():
                vw = [w.lower() for w in words(value)]
                if [w.lower() for w in said[: len(vw)]] == vw and (
                    best is None or len(vw) > best[2]
                ):
                    best = (value, count, len(vw))
        ok = (best is not None and best[1] >= 2 and 2 * best[1] >= len(liked)
              and best[0] not in own)  # fmt: skip
        if not ok:
            verdict.flags.add("false_taste")
            verdict.notes.append(f"'your usual {' '.join(said[:3])}' is not what the data says")
            continue
        written = r"\W+".join(re.escape(w) for w in said[: best[2]])
        nouns = "|".join(sorted(_KIND_NOUNS))
        phrase = re.compile(
            rf"{_CONTRAST}\s+{written}(?:\s+(?:{nouns}))?\b",
            re.I,
        )
        verdict.claims += 1
        verdict.supported += 1
        verdict.cites_user = True
        out = phrase.sub(" ", out, count=1)
    return out


def _named(truth: Truth, masked: str, slots: dict[str, str], target: str) -> bool:
    if any(iid == target and slot[1] == "T" for slot, iid in slots.items()):
        return True
    have = {stem(w) for w in words(masked)}
    for form in title_forms(truth.items[target].title):
        want = [stem(w) for w in words(form) if w.lower() not in STOP]
        if want and sum(w in have for w in want) / len(want) >= 0.6:
            return True
    return False


def _other_subject(truth: Truth, target: str, before: str) -> bool:
    """Whether what follows ``before`` ("is a ...", "is made by ...") is said of a thing
    the target's own data tells of that is no word for the item itself: "(the Sheriff
    slowly discovers) the town | is a front", "The wager | is made by ..." (not "The
    film is ...", "It is ...", nor a noun its data never mentions: "The picture is ...")."""
    match = _SUBJECT.search(before)
    if not match or match.group(1).lower() in _PRONOUNS:
        return False
    noun = stem(match.group(1))
    if noun in truth.kinds[target] or noun in _KINDS or noun in GENERIC or noun in STOP:
        return False
    return noun in truth.vocab[target]


def _roles(truth: Truth, verdict: Verdict, clause: str, target: str) -> set[str]:
    """A person named in a role (director, writer, cast) or a name given as the brand
    that the target's data does not give them. A role phrase the target's own text has
    word for word ("film director Marty DiBergi", a character of This Is Spinal Tap) is
    its data; so is a name its own text has after "made by" said of another thing its
    text tells of ("The wager is made by Professor Henry Higgins"). A name as the brand
    ("brand, X") always needs the brand attribute."""
    attributes = truth.items[target].attributes
    own = truth.own_text[target]
    out = set()
    for pattern, fields in _ROLES:
        if not any(f in attributes for f in fields) and fields != ("brand",):
            continue
        people = {w.lower() for f in fields for v in _values(attributes.get(f)) for w in words(v)}
        for match in pattern.finditer(clause):
            # the named person, and any more listed after it ("starring A, B and C")
            rest = clause[match.end() :]
            listed = re.match(r"(?:(?:,\s*|\s+)(?:and\s+)?(?:[A-Z][\w'.-]*\s?){1,3})*", rest)
            said = match.group(0) + listed.group(0)
            # "made by X" of another thing the item's text tells of is no maker claim
            other = len(fields) > 1 and _other_subject(truth, target, clause[: match.start()])
            at = match.start(1) - match.start()
            for person in re.split(r",\s*(?:and\s+)?|\s+and\s+", match.group(1) + listed.group(0)):
                names = [w for w in words(person) if w[0].isupper()]
                at = said.find(person, at) + len(person) if person else at
                if not names or all(n.lower() in people for n in names):
                    continue
                if "brand" not in fields and _sequence(said[:at]) in own:
                    continue  # the role phrase as the item's own text has it
                if other and _sequence(" ".join(names)) in own:
                    continue  # a person of the item's text, not who made it
                out.add("invented_name")
                verdict.notes.append(f"'{' '.join(names)}' is not {fields[0]} of the item")
    return out


def _check_clause(truth: Truth, verdict: Verdict, clause: str, opens: bool,
                  slots: dict[str, str], target: str | None, target_vocab: set[str],
                  user_vocab: set[str], user_tags: set[str], allowed: set[float],
                  kind: str, subjects: list[str], liked: set[str],
                  bought: set[str], liked_kinds: set[str]) -> None:  # fmt: skip
    grounded = target_vocab | user_vocab
    flags: set[str] = set()
    found = _MASK.findall(clause)
    for match in _MASK.finditer(clause):
        role, iid = match.group(1), slots.get(match.group(0))
        if role == "O":
            flags.add("other_item")
            verdict.notes.append(f"other item: {truth.items[iid].title}")
        elif role == "H" and _USER_DID.search(clause[: match.start()]):
            # "you liked X" / "you bought X": the user's own events must say so
            verb = _USER_DID.search(clause[: match.start()]).group(1).lower()
            if iid not in (bought if verb in ("bought", "purchased") else liked):
                flags.add("false_history")
                verdict.notes.append(
                    f"the user's data does not say they {verb} {truth.items[iid].title}"
                )
        if role == "H" and subjects:
            prefix = clause[: match.start()]
            rel = next((k for k, rx in _RELATION.items() if rx.search(prefix)), "any")
            if not any(truth.relation(iid, s, rel) for s in subjects):
                flags.add("unsupported_relation")
                verdict.notes.append(
                    f"relation {rel!r} to {truth.items[iid].title} not in the data"
                )
    for match in _USER_DID_ANY.finditer(clause):
        # "you liked <something>" that is no title: a kind the user's items have or the
        # user's own words, else no item of theirs ("You liked the altar boy")
        after = clause[match.end() :]
        obj = words(after)[:1]
        if obj and obj[0].lower() in ("it", "this") and re.match(
            r"\s*\w+\s+(?:too|as well|already)\b", after, re.I
        ):
            # "..., and you liked it too": the recommended item is one they have not had
            flags.add("false_history")
            verdict.notes.append("says the user already liked the recommended item")
            continue
        if after.lstrip().startswith("\u27e6") or not obj or obj[0].lower() in STOP \
                or obj[0].lower() in _PRONOUNS:  # fmt: skip
            continue
        if stem(obj[0].lower()) not in liked_kinds:
            flags.add("false_history")
            verdict.notes.append(
                f"'{match.group(0)}{' '.join(words(after)[:3])}' names no item of theirs"
            )
    plain = _MASK.sub(" ", clause)
    tokens = words(plain)
    user_ref = any(r == "H" for r, _ in found) or any(w.lower() in _USER for w in tokens)
    content = [
        stem(w)
        for w in tokens
        if w.lower() not in STOP and w.lower() not in GENERIC and not w[0].isdigit()
    ]
    content = [c for c in content if c not in STOP and c not in GENERIC]  # fmt: skip
    popular = target is not None and truth.is_popular(target)
    content = [c for c in content if not (c in POPULAR and popular)]
    identity = {stem(w) for m in _IDENTITY.finditer(plain) for w in words(m.group(1))}
    if target and kind in ("reason", "pitch", "headline"):  # a summary retells its article
        source = _FROM_ITEM.search(clause)
        if source and not (
            words(source.group(1)) and words(source.group(1))[-1].lower() in _COMPARE
        ):
            flags.add("false_identity")
            verdict.notes.append("says the item comes from another item")
        brands = {v.lower() for v in _values(truth.items[target].attributes.get("brand"))}
        # (with the titles still masked: "a Cascade Gear First Aid Kit" is no brand)
        for m in _IDENTITY.finditer(_QUALITIES.sub(r"\1 \2 ", clause)):
            if " ".join(w for w in words(m.group(1)) if not w.isdigit()).lower() in brands:
                flags.add("false_identity")
                verdict.notes.append(f"calls the item its brand, '{m.group(1)}'")
        # (the target's title kept as a mark: "a firm <title>" names the item)
        said_as = _QUALITIES.sub(r"\1 \2 ", _MASK.sub(
            lambda m: f" {_TITLE_MARK} " if m.group(1) == "T" else " ", clause))  # fmt: skip
        found_as = []
        for m in _IDENTITY.finditer(said_as):
            # said of another thing the item's text tells of ("the town is a front")
            if _other_subject(truth, target, said_as[: m.start()]):
                continue
            found_as.append(m)
            more = _AND_A.match(said_as[m.end() :])
            if more:
                found_as.append(more)
        title = title_forms(truth.items[target].title)[0]
        for m in found_as:
            phrase = _PARTICIPLE.split(m.group(1))[0]
            said = [w for w in words(phrase) if not w[0].isdigit()]
            if phrase.rstrip().endswith(_TITLE_MARK):
                # the item by its title: the words before it must be the item's own data
                # ("a firm Foam Roller", as its text says; not "a soft Foam Roller")
                wrong = any(stem(w) not in truth.vocab[target] and w.lower() not in STOP
                            and w.lower() not in GENERIC for w in said)  # fmt: skip
            else:
                head = stem(said[-1]) if said else ""
                # a compound is what each of its parts is: "a comedy-drama" of a Comedy
                # and Drama film (each part a kind of the item, or a word for any item)
                wrong = bool(head) and not all(
                    part in truth.kinds[target] or part in _KINDS or part in GENERIC
                    or part in STOP for part in _parts(head))  # fmt: skip
            if wrong:
                flags.add("false_identity")
                verdict.notes.append(
                    f"calls the item '{' '.join(m.group(1).replace(_TITLE_MARK, title).split())}'"
                )
    for c in content:
        if target and kind != "digest" and c in (truth.all_tags | truth.type_words) \
                and c not in truth.vocab[target]:  # fmt: skip
            if user_ref and c in user_vocab and c not in identity:
                continue
            flags.add("user_tags_as_item" if c in user_tags else "other_category")
            verdict.notes.append(f"'{c}' said of the item, which lacks it")
    for value in numbers(plain) - allowed:
        flags.add("invented_number")
        verdict.notes.append(f"number {value:g} not in the data")
    if not user_ref:  # what only the user's data holds is grounded only in a clause about them
        grounded = grounded - (user_vocab - target_vocab)
    for word, at_start in _names_in(plain, opens):
        s = stem(word)
        if s in grounded or word.lower() in STOP or word.lower() in GENERIC:
            continue
        if not at_start or s in truth.names:
            flags.add("invented_name")
            verdict.notes.append(f"name '{word}' not in the data")
    if target:
        flags |= _roles(truth, verdict, plain, target)
    verdict.flags |= flags
    if not content and not found and not numbers(plain):
        return  # recommendation talk only: no checkable claim
    verdict.claims += 1
    def known(c: str) -> bool:  # a compound ("comedy-romance") is known when its parts are
        return c in grounded or all(part in grounded for part in _parts(c))

    share = sum(known(c) for c in content) / len(content) if content else 1.0
    if not flags and share >= 0.75:
        verdict.supported += 1
    elif not flags:
        missing = sorted({c for c in content if not known(c)})
        verdict.notes.append(f"unsupported words: {', '.join(missing[:6])}")


# ------------------------------------------------------------------------- self-test
# A tiny ML-100K-like catalog (descriptions with "Directed by X." merged in, a title with
# its alternative name in parentheses, titles that are also words or first names): what
# the shop of ``content.KNOWN_TRUE`` cannot show. (item id, title, text, genres, director)
_FILMS = [
    ("1", "Seven (Se7en) (1995)", "Two detectives hunt a serial killer who uses the seven "
     "deadly sins as his motives. Directed by David Fincher.", ["Crime", "Thriller"],
     "David Fincher"),
    ("2", "Twelve Monkeys (1995)", "A convict is sent back in time. Directed by Terry Gilliam.",
     ["Drama", "Sci-Fi"], "Terry Gilliam"),
    ("3", "Michael (1996)", "An angel visits a small town. Directed by Nora Ephron.",
     ["Comedy"], "Nora Ephron"),
    ("4", "Rock, The (1996)", "A chemist and an ex-con must stop a rogue general. Directed "
     "by Michael Bay.", ["Action", "Thriller"], "Michael Bay"),
    ("5", "War Room, The (1993)", "A campaign seen from the inside.", ["Documentary"], None),
    ("6", "Dr. Strangelove (1963)", "An insane general triggers a path to nuclear holocaust "
     "that a War Room full of politicians tries to stop. Directed by Stanley Kubrick.",
     ["Comedy", "War"], "Stanley Kubrick"),
    ("7", "Ed Wood (1994)", "Troubled movie director Edward D. Wood Jr. tries his best to "
     "fulfill his dreams. Directed by Tim Burton.", ["Comedy", "Drama"], "Tim Burton"),
    ("8", "My Fair Lady (1964)", "Phonetics Professor Henry Higgins agrees to a wager that he "
     "can make flower girl Eliza Doolittle presentable. Directed by George Cukor.",
     ["Musical", "Romance"], "George Cukor"),
    ("9", "Cop Land (1997)", "The Sheriff of a suburban town slowly discovers the town is a "
     "front for mob connections. Directed by James Mangold.", ["Crime", "Drama"],
     "James Mangold"),
    ("10", "Monty Python's Life of Brian (1979)", "Brian of Nazareth is mistaken for a messiah.",
     ["Comedy"], None),
    ("11", "Private Parts (1997)", "A radio host tells his story.", ["Comedy"], None),
]  # fmt: skip
# (item, kind, text) the data supports, each needing one of the rules above
_FILMS_TRUE = [
    # another item's title copied with its neighbours from the item's own text
    ("6", "pitch", "Dr. Strangelove: An insane general triggers a path to nuclear holocaust "
     "that a War Room full of politicians tries to stop."),
    # a history item's title ("Michael") as part of the director's name
    ("4", "reason", "The Rock is an Action pick, directed by Michael Bay."),
    # a role phrase as the item's text has it (Edward D. Wood Jr. is its hero)
    ("7", "pitch", "Ed Wood is a Comedy directed by Tim Burton. Troubled movie director "
     "Edward D. Wood Jr. tries his best to fulfill his dreams."),
    # "made by" a person of the item's text, said of a thing the text tells of
    ("8", "pitch", "My Fair Lady is a Musical. The wager is made by Professor Henry Higgins."),
    # a title's parts: "Seven (Se7en)" is named as "Seven" or "Se7en"
    ("1", "reason", "If you enjoyed Twelve Monkeys, Seven is a Crime and Thriller: 40% of the "
     "5 people who liked Twelve Monkeys liked it too."),
    ("1", "reason", "Se7en is a Thriller directed by David Fincher."),
    # a comma before a participle's phrase ends what the item is
    ("10", "reason", "As you liked Private Parts, Monty Python's Life of Brian is a Comedy, "
     "liked by 40% of the 5 people who liked Private Parts."),
    # "the town is a front": said of the town, not of the item
    ("9", "pitch", "Cop Land: The Sheriff of a suburban town slowly discovers the town is a "
     "front for mob connections."),
    # a compound of the item's kinds: Seven is a Crime and Thriller film
    ("1", "reason", "Seven is a crime-thriller directed by David Fincher."),
]  # fmt: skip
# (item, text, flag): the same rules do not let these through
_FILMS_FALSE = [
    ("6", "Dr. Strangelove is as sharp as The War Room.", "other_item"),
    ("7", "Ed Wood is directed by Edward D. Wood Jr.", "invented_name"),
    ("8", "My Fair Lady is made by Henry Higgins.", "invented_name"),
    ("8", "My Fair Lady is a Musical. The wager is made by Colonel Pickering.", "invented_name"),
    ("4", "If you liked Michael, The Rock is an Action pick.", "unsupported_relation"),
    ("9", "Cop Land is a front for mob connections.", "false_identity"),
    ("9", "The picture is a front for mob connections.", "false_identity"),
    ("1", "Seven is a crime-comedy directed by David Fincher.", "false_identity"),
    ("1", "If you enjoyed Twelve Monkeys, Seven is a Thriller: 40% of the 6 people who liked "
     "Twelve Monkeys liked it too.", "invented_number"),
]  # fmt: skip


def self_test() -> None:
    """The rules for ML-100K-like data on :data:`_FILMS`: each text of
    :data:`_FILMS_TRUE` fully supported, each of :data:`_FILMS_FALSE` given its flag."""
    from types import SimpleNamespace as Record

    # a word twice in a row is a stutter; across a colon it is a headline's two parts
    assert _repeats("a zip-up zip-up shell") and not _repeats("Ancient Seeds: Seeds that sprout")

    items = [Record(item_id=iid, title=title, text=text,
                    attributes={"genres": genres, **({"director": [by]} if by else {})})
             for iid, title, text, genres, by in _FILMS]  # fmt: skip
    # user "u" liked Twelve Monkeys, Michael and Private Parts; so did four others, two of
    # whom liked Seven and Life of Brian too (40% of the 5)
    events = [Record(user_id=user, item_id=iid, kind="rate", value=5.0, text=None)
              for user, liked in (("u", "2 3 11"), ("a", "2 11 1 10"), ("b", "2 11 1 10"),
                                  ("c", "2 11"), ("d", "2 11"))
              for iid in liked.split()]  # fmt: skip
    truth = Truth.build(items, events)
    for item, kind, text in _FILMS_TRUE:
        verdict = check_text(truth, text, kind, "u", item)
        assert verdict.fully_supported, (text, verdict.to_dict())
    for item, text, flag in _FILMS_FALSE:
        verdict = check_text(truth, text, "reason", "u", item)
        assert flag in verdict.flags, (text, verdict.to_dict())


if __name__ == "__main__":
    self_test()
    print("content_check: self-test passed")
