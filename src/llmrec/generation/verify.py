"""Checking that a text is a grounded reason: :func:`verify_text`.

:func:`verify_text` runs a fixed list of small checks over one shared
:class:`_Context` (the text's normalized words, the evidence's words, the catalog's title
index), each returning its problems; the order of the list is the order of the problems.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from llmrec._validate import check_choice
from llmrec.catalog import Catalog
from llmrec.errors import InvalidInputError
from llmrec.generation import claims
from llmrec.generation.evidence import MAX_ITEM_TEXT_CHARS
from llmrec.generation.plan import (
    TASTE_CHANGE,
    TASTE_SHORT,
    attribute_strings,
    request_plan,
    taste_change,
)
from llmrec.generation.text import (
    CHAT_TOKEN,
    INJECTION,
    STOPWORDS,
    contains,
    display_title,
    instruction_words,
    normalize,
    pieces,
    sanitize_text,
    title_forms,
    title_prefixes,
    word_count,
)
from llmrec.privacy import has_contact
from llmrec.types import Fact, Item

__all__ = ["Verification", "capitalized_words", "proper_words", "verify_text"]

logger = logging.getLogger(__name__)

_ECHO = re.compile(
    r"\[/?[A-Za-z_]{2,12}\]|^\s*(?:system|user|assistant|title|genres|about|"
    r"you liked|why)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_SELF_REFERENCE = re.compile(
    r"\b(?:enjoyed|liked|watched|loved) (?:it|this)\b[^.]{0,20}\balso "
    r"(?:enjoyed|liked|watched|loved)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|s)?(?!\w)")
_YEAR = re.compile(r"^(1[89]\d\d|20\d\d)s?$")
# A phrase that presents what follows as the user's own taste or as the thing compared to.
_EVIDENCE_CUE = re.compile(
    # not "which you liked": a clause about the name before it ("After Fargo, which you
    # liked, <target> is"; the words have lost their commas)
    r"(?:(?<!\bwhich )(?<!\bthat )\byou(?: ve| have| already| once)? "
    r"(?:liked|enjoyed|loved|watched|saw|seen|rated|like|love|enjoy)|"
    r"\bfans of|\bsimilar(?: in \w+)? to|\bclose to|\breminiscent of|\breminds? you of|"
    r"\bmuch like|\bjust like|\bas much as|\bthe likes of|"
    r"\b(?:elements|echoes|shades|the spirit) of)(?: the| a| an)?$"
)

#: Other ways to write a genre; a genre in the evidence allows them.
_TAG_ALIASES: dict[str, tuple[str, ...]] = {
    "sci fi": ("science fiction", "scifi", "sf"),
    "science fiction": ("sci fi", "scifi"),
    "childrens": ("children", "kids", "family"),
    "film noir": ("noir",),
    "animation": ("animated", "cartoon"),
    "romance": ("romantic",),
    "musical": ("music",),
    "horror": ("scary",),
    "war": ("wartime",),
    "comedy": ("comic", "comedic"),
}

#: Kinds of work -> the evidence words that allow them. A text about a film that calls it
#: a "TV series" or "the sequel" states a fact the catalog does not give.
_MEDIA_WORDS: dict[str, tuple[str, ...]] = {
    "tv": ("tv", "television"),
    "television": ("tv", "television"),
    "series": ("series", "tv", "television"),
    "miniseries": ("miniseries",),
    "sitcom": ("sitcom",),
    "episode": ("episode",),
    "episodes": ("episode", "episodes"),
    "season": ("season",),
    "seasons": ("season", "seasons"),
    "documentary": ("documentary",),
    "documentaries": ("documentary",),
    "docuseries": ("docuseries",),
    "biopic": ("biopic", "biography"),
    "book": ("book", "books"),
    "books": ("book", "books"),
    "novel": ("novel",),
    "novels": ("novel", "novels"),
    "comic": ("comic", "comics"),
    "comics": ("comic", "comics"),
    "manga": ("manga",),
    "anime": ("anime",),
    "cartoon": ("cartoon", "animation", "animated"),
    "franchise": ("franchise",),
    "sequel": ("sequel", "part", "ii", "2"),
    "prequel": ("prequel",),
    "trilogy": ("trilogy",),
    "remake": ("remake",),
    "reboot": ("reboot",),
    "spinoff": ("spinoff",),
    "podcast": ("podcast",),
    "album": ("album",),
    "song": ("song",),
    "video game": ("video game", "game"),
    "true story": ("true story", "true", "real"),
}

#: Attributes that say what kind of item it is filed as.
_CATEGORY_ATTRIBUTES = ("category", "categories", "section", "genres", "tags")

#: A capitalized hyphenated word after a lower-case word ("a Climate-focused plan").
_HYPHENATED = re.compile(r"(?<=[a-z,;] )[A-Z][\w']*(?:-[\w']+)+")

#: Capitalized words that are not claims.
_PROPER_OK = frozenset({"i", "you", "your", "yours", "im", "ive", "id", "youll", "youre", "youve"})

#: Words of a removed instruction span that every reason may use ("you are now ..."):
#: only the others mark a text as repeating it.
_FUNCTION_WORDS = STOPWORDS | frozenset(
    "you your yours i me my we our are was be been am now may can will would should all any "
    "this that these those its not no".split()
)

_COMMON_WORDS = frozenset(
    "this that these those there their they them then than also like just only very much such "
    "what when where which while with your yours since because about after before".split()
)


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_text`: ``ok`` and the problems found (empty if ok)."""

    ok: bool
    problems: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- title index


class _TitleIndex:
    """Normalized titles of a catalog keyed by their first word (one-word titles) or first
    two words (longer titles), so a scan looks at a handful of candidates per word."""

    def __init__(self, catalog: Catalog) -> None:
        self.version = catalog.version
        by_key: dict[Any, list[tuple[tuple[str, ...], str]]] = {}
        tags: set[str] = set()
        for item in catalog:
            tags.update(_normalize_tag(t) for t in item.tags)
            for form in title_forms(item.title):
                words = tuple(form.split())
                if len(words) >= 2:
                    by_key.setdefault(words[:2], []).append((words, item.item_id))
                elif len(form) >= 4:
                    by_key.setdefault(words[0], []).append((words, item.item_id))
        self.by_key = by_key
        self.tag_words = {t for t in tags if t}
        for tag in self.tag_words:  # a genre word is a genre, not the one-word title
            by_key.pop(tag, None)

    def candidates(self, words: list[str], i: int) -> list[tuple[tuple[str, ...], str]]:
        out = list(self.by_key.get(words[i], ()))
        if i + 1 < len(words):
            out += self.by_key.get((words[i], words[i + 1]), ())
        return out


@functools.lru_cache(maxsize=4096)
def _normalize_tag(tag: str) -> str:
    return normalize(tag)


_INDEXES: weakref.WeakKeyDictionary[Catalog, _TitleIndex] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def _title_index(catalog: Catalog) -> _TitleIndex:
    with _INDEX_LOCK:
        index = _INDEXES.get(catalog)
        if index is None or index.version != catalog.version:
            started = time.perf_counter()
            index = _TitleIndex(catalog)
            _INDEXES[catalog] = index
            logger.debug(
                "built the title index of %d items in %.3fs",
                len(catalog),
                time.perf_counter() - started,
            )
        return index


# ----------------------------------------------------------------------------- words


def proper_words(text: str) -> list[tuple[str, str]]:
    """``(raw, normalized)`` for each word of ``text`` that starts upper-case and does
    not start a sentence."""
    return [
        (p.raw, word)
        for p in pieces(text)
        if p.first.isupper() and not p.sentence_start
        for word in p.words
    ]


def capitalized_words(text: str) -> list[tuple[bool, bool]]:
    """For each normalized word of ``text``: (starts upper-case or with a digit, follows a
    sentence stop)."""
    return [
        (p.first.isupper() or p.first.isdigit(), p.after_stop)
        for p in pieces(text)
        for _ in p.words
    ]


def _occurrences(words: list[str], needle: list[str]) -> list[int]:
    size = len(needle)
    return [i for i in range(len(words) - size + 1) if size and words[i : i + size] == needle]


def _spans(words: list[str], forms: Iterable[str]) -> list[bool]:
    """Per word, whether it lies in an occurrence of one of ``forms``."""
    marked = [False] * len(words)
    for form in forms:
        needle = form.split()
        for i in _occurrences(words, needle):
            for j in range(i, i + len(needle)):
                marked[j] = True
    return marked


def _item_facts(item: Item, *, with_text: bool) -> str:
    parts = [item.title, display_title(item.title)]
    if with_text:
        # The target's own facts: its tags, year and text. An evidence item contributes
        # its title only: its genres and year are not the target's (a user's tags must
        # not be described as the item's); a relation the plan holds states them.
        parts.append(" ".join(item.tags))
        year = item.attributes.get("year")
        if year is not None:
            parts.append(str(year))
        parts.append(sanitize_text(item.text, MAX_ITEM_TEXT_CHARS))
    return " ".join(parts)


def _with_aliases(norm: str) -> str:
    """Normalized ``norm``, space-delimited, with the other spellings of its genres."""
    norm = f" {norm} "
    aliases = (a for tag, names in _TAG_ALIASES.items() if f" {tag} " in norm for a in names)
    return norm + " ".join(aliases) + " "


# ----------------------------------------------------------------------------- context


class _Context:
    """What the checks share: the text and its normalized words, the evidence and its
    words, the catalog's title index; each computed once, when a check first needs it."""

    def __init__(
        self,
        text: str,
        target: Item,
        evidence: Sequence[Item],
        catalog: Catalog,
        max_words: int,
        query: str | None,
        plan: Sequence[Fact] = (),
        kind: str = "reason",
    ) -> None:
        self.text, self.target, self.evidence = text, target, evidence
        self.catalog, self.max_words, self.query = catalog, max_words, query
        self.plan, self.kind = tuple(plan), kind
        self.listed: frozenset[str] = frozenset()
        self.norm = normalize(text)
        self.words = self.norm.split()
        self.index = _title_index(catalog)
        self.target_forms = title_forms(target.title)
        self.target_mentions = self.target_forms | title_prefixes(target.title)

    @functools.cached_property
    def allowed_forms(self) -> set[str]:
        """Normalized titles of the target and the evidence items."""
        forms = set(self.target_forms)
        for item in self.evidence:
            forms |= title_forms(item.title)
        return forms

    @functools.cached_property
    def covered(self) -> list[bool]:
        """Per word, whether an allowed title (or a prefix of one) covers it, or the
        phrase that states the user's usual kind (``"a change from your usual Sports"``,
        from a ``taste`` fact: that kind is the user's, not the item's)."""
        prefixes = title_prefixes(self.target.title)
        for item in self.evidence:
            prefixes |= title_prefixes(item.title)
        covered = _spans(self.words, self.allowed_forms | prefixes)
        return [a or b for a, b in zip(covered, self.taste_covered)]

    @functools.cached_property
    def taste_covered(self) -> list[bool]:
        """Per word, whether it lies in "a change from your usual <kind> picks" (or
        "stories", or its short "beyond <kind>") of a ``taste`` fact: the phrases that
        may name the user's usual kind. Only a headline may end the phrase at the kind
        ("...: a change from your usual Fitness"); in a sentence it reads cut off ("is a
        change from your usual Running, made by Velo Works")."""
        stories: tuple[bool | None, ...] = (True, False)
        if self.kind == "headline":
            stories += (None,)
        tastes = {
            normalize(taste_change(f, story=story, short=short))
            for f in self.plan
            if f.kind == "taste" and f.values
            for story in stories
            for short in (False, True)
        }
        return _spans(self.words, tastes)

    @functools.cached_property
    def category_values(self) -> frozenset[str]:
        """The target's category, section, genre and tag values, normalized: what kind of
        item it is filed as."""
        values = list(self.target.tags)
        for key in _CATEGORY_ATTRIBUTES:
            value = self.target.attributes.get(key)
            values += value if isinstance(value, (list, tuple)) else [value]
        return frozenset(n for v in values if isinstance(v, str) and (n := normalize(v)))

    @functools.cached_property
    def category_words(self) -> set[str]:
        """The words of :attr:`category_values`, singular and plural."""
        words = {w for v in self.category_values for w in v.split()}
        return words | {w[:-1] for w in words if w.endswith("s")} | {w + "s" for w in words}

    @functools.cached_property
    def title_words(self) -> list[str]:
        """The normalized words of the target's shown title."""
        return normalize(display_title(self.target.title)).split()

    @functools.cached_property
    def untitled_words(self) -> list[str]:
        """The words no allowed title covers (the phrase of the user's usual kind kept:
        it is said, and said once)."""
        return [
            w
            for w, cov, taste in zip(self.words, self.covered, self.taste_covered)
            if taste or not cov
        ]

    @functools.cached_property
    def free_words(self) -> list[str]:
        """The words neither an allowed title nor the phrase of the user's usual kind
        covers (:attr:`covered`)."""
        return [w for w, c in zip(self.words, self.covered) if not c]

    @functools.cached_property
    def facts(self) -> str:
        """The evidence as one text: the target's facts and text, the evidence items'
        facts, the query."""
        return " ".join(
            [_item_facts(self.target, with_text=True)]
            + [_item_facts(e, with_text=False) for e in self.evidence]
            # a taste names the user's usual kind: a text may say it only as "a change
            # from your usual <kind>" (:attr:`covered`), never of the item
            + [f"{f.text} {' '.join(f.values)}" for f in self.plan if f.kind != "taste"]
            + [self.query or ""]
        )

    @functools.cached_property
    def fact_norm(self) -> str:
        """The normalized evidence, space-delimited, with the other spellings of its
        genres."""
        return _with_aliases(normalize(self.facts))

    @functools.cached_property
    def own_norm(self) -> str:
        """The normalized facts of the target itself (not its evidence items'), with the
        other spellings of its genres: what a genre or tag word must come from."""
        parts = [_item_facts(self.target, with_text=True), self.query or ""]
        parts += [
            f"{f.text} {' '.join(f.values)}"
            if f.item_id is None and f.kind != "taste"  # a taste is the user's, not the item's
            else " ".join(f.values) * (f.kind == "shared_attribute")
            for f in self.plan
        ]
        return f" {normalize(' '.join(parts))} {' '.join(sorted(self.alias_words))} "

    @functools.cached_property
    def alias_words(self) -> set[str]:
        """Other spellings of the target's own tags ("science fiction" for Sci-Fi)."""
        tags = f" {normalize(' '.join(self.target.tags))} "
        return {
            word
            for tag, aliases in _TAG_ALIASES.items()
            if f" {tag} " in tags
            for alias in aliases
            for word in alias.split()
        }

    @functools.cached_property
    def other_titles(self) -> tuple[list[str], set[str]]:
        """Other catalog items the text names: their display titles and their words."""
        words, covered, index = self.words, self.covered, self.index
        allowed_ids = {self.target.item_id, *(e.item_id for e in self.evidence)}
        capitalized = capitalized_words(self.text)
        # A title's words inside a name the items' data gives ("Michael Palin" of the
        # cast, beside the film "Michael") or inside words copied from the target's own
        # text ("a War Room full of politicians") name no other item.
        names = _spans(words, self.data_names)
        own_text = f" {normalize(self.target.text)} "
        named: list[str] = []
        named_words: set[str] = set()
        for i in range(len(words)):
            for tw, item_id in index.candidates(words, i):
                if item_id in allowed_ids or " ".join(tw) in self.allowed_forms:
                    continue
                if words[i : i + len(tw)] != list(tw) or all(covered[i : i + len(tw)]):
                    continue
                if all(names[i : i + len(tw)]):
                    continue
                window = words[max(0, i - 1) : i + len(tw) + 1]
                if len(window) > len(tw) and f" {' '.join(window)} " in own_text:
                    continue
                if not _looks_like_a_title(words, i, tw, capitalized):
                    continue
                named_words.update(tw)
                try:
                    named.append(display_title(self.catalog.get(item_id).title))
                except KeyError:
                    named.append(" ".join(tw))
        return named, named_words

    @functools.cached_property
    def data_names(self) -> frozenset[str]:
        """The target's and the evidence's attribute values of two words or more
        (people, brands), normalized."""
        out = set()
        for item in (self.target, *self.evidence):
            for value in item.attributes.values():
                out.update(normalize(v) for v in attribute_strings(value) if " " in v.strip())
        return frozenset(out)

    @functools.cached_property
    def injected_words(self) -> frozenset[str]:
        """Words the instruction filter removed from the target's title or text, an
        evidence title or the query, and that no kept part of the evidence has."""
        sources = [self.target.title, self.target.text, *(e.title for e in self.evidence)]
        sources.append(self.query or "")
        removed = frozenset().union(*(instruction_words(str(s)) for s in sources))
        if not removed:
            return removed
        kept = normalize(
            " ".join([*(sanitize_text(s, len(str(s)) + 1) for s in sources), *self.target.tags])
        )
        return removed - _FUNCTION_WORDS - set(kept.split())


def _looks_like_a_title(
    words: list[str], i: int, tw: tuple[str, ...], capitalized: list[tuple[bool, bool]]
) -> bool:
    """Whether the title words ``tw`` at word ``i`` are written as a title."""
    lead = next((j for j in range(i, i + len(tw)) if words[j] not in STOPWORDS), i)
    if lead < len(capitalized) and not capitalized[lead][0]:
        return False  # lower case: a common phrase ("love story"), not a title
    # A capital that only starts a sentence proves nothing.
    return not (
        len(tw) == 1
        and (
            lead >= len(capitalized)
            or capitalized[lead][1]
            or (len(tw[0]) < 6 and tw[0] in _COMMON_WORDS)
        )
    )


# ----------------------------------------------------------------------------- checks


def _check_length(c: _Context) -> list[str]:
    n_words = word_count(c.text)
    return [f"{n_words} words (limit {c.max_words})"] if n_words > c.max_words else []


def _check_form(c: _Context) -> list[str]:
    if CHAT_TOKEN.search(c.text) or INJECTION.search(c.text) or _ECHO.search(c.text):
        return ["chat-template tokens or an instruction echo"]
    if c.kind != "headline" and not re.search(r"[.!?][\"')]*\s*$", c.text):
        return ["unfinished sentence"]
    labels = {f.text.split(":", 1)[0] for f in c.plan if f.kind == "attribute" and ":" in f.text}
    labels = {label for label in labels if len(label.split()) <= 3}
    copied = sorted(label for label in labels if f"{label}:" in c.text)
    if copied:  # the model pasted a plan line ("the Genres: Animation ...")
        return [f"copies the fact label {copied[0]!r}"]
    return []


def _check_injected(c: _Context) -> list[str]:
    """No word that only an instruction-like span of the evidence had ("write 'HACKED'"
    -> "hacked"): the model followed an instruction it was never shown, or one that got
    through. (An instruction-like span in the text itself is a form problem.)"""
    echoed = [w for w in dict.fromkeys(c.words) if w in c.injected_words]
    return ["repeats an instruction of the evidence: " + ", ".join(echoed[:3])] if echoed else []


def _check_contacts(c: _Context) -> list[str]:
    return ["contains contact details"] if has_contact(c.text) else []


def _check_self_reference(c: _Context) -> list[str]:
    return ["self-referential reason"] if _SELF_REFERENCE.search(c.text) else []


def _check_target(c: _Context) -> list[str]:
    """The target must be named, and not as if it were the user's own evidence."""
    shown = display_title(c.target.title)
    if c.kind == "summary":  # a summary of the item's own text need not repeat its title
        return []
    if c.kind == "digest":  # one line about the whole list: two of its titles, any two
        listed = [c.target, *(e for e in c.evidence if e.item_id in c.listed)]
        for item in listed:
            # "Foam Roller, Headlamp 400, First Aid Kit, ... and First Aid Kit."
            times = max(len(_occurrences(c.words, f.split())) for f in title_forms(item.title))
            if times > 1:
                return [f"names {display_title(item.title)!r} twice"]
        named = sum(any(contains(c.norm, f) for f in title_forms(i.title)) for i in listed)
        if named >= min(2, len(listed)):
            return []
        if named:
            return ["introduces one item, not the list: name two of the listed items"]
        return [f"does not mention {shown!r} or another listed item"]
    if not any(contains(c.norm, f) for f in c.target_mentions):
        return [f"does not mention {shown!r}"]
    if _cites_target_as_evidence(c.words, c.target_mentions, c.evidence):
        return [f"cites {shown!r} as its own evidence"]
    if _LIKED_IT_TOO.search(c.text):
        return [f"says the user already liked {shown!r}"]
    return []


#: "..., and you liked it too": the user's own liking of the item recommended to them.
_LIKED_IT_TOO = re.compile(
    r"\byou(?: also| have| already)? (?:liked|enjoyed|loved|bought|watched|rated|saw) "
    r"(?:it|this(?: one)?)(?: too| as well| already)\b",
    re.IGNORECASE,
)


def _cites_target_as_evidence(
    words: list[str], mentions: set[str] | frozenset[str], evidence: Sequence[Item]
) -> bool:
    """Whether a mention of the target follows an evidence cue ("because you liked
    <target>", "fans of <target>"): a circular reason. Words that belong to an evidence
    title ("Star Wars" of the evidence's "Star Wars: Episode IV") are not the target."""
    evidence_spans = _spans(
        words,
        (
            form
            for item in evidence
            for form in title_forms(item.title) | title_prefixes(item.title)
        ),
    )
    for form in mentions:
        size = len(form.split())
        for i in _occurrences(words, form.split()):
            if all(evidence_spans[i : i + size]):
                continue
            if _EVIDENCE_CUE.search(" ".join(words[:i])):
                return True
    return False


def _check_other_titles(c: _Context) -> list[str]:
    """No other catalog title; spans covered by an allowed title do not count."""
    named, _ = c.other_titles
    return ["names other items: " + ", ".join(sorted(set(named))[:3])] if named else []


def _check_repetition(c: _Context) -> list[str]:
    free = c.untitled_words
    grams = [tuple(free[i : i + 4]) for i in range(len(free) - 3)]
    if len(set(grams)) < len(grams):
        return ["repetitive text"]
    doubled = next(
        (a for a, j, b in zip(free, free[1:], free[2:]) if j in ("and", "or") and a == b),
        None,
    )
    if doubled and doubled not in STOPWORDS and not doubled.isdigit():
        return [f"repeats '{doubled} and {doubled}'"]  # "reimagined and reimagined"
    # the same four words with a title word among them: "a two-person camping tent, and
    # a two-person camping tent" ("two-person" is a title's word); a title named twice,
    # "... liked Polar Fleece Pullover", is no repeat (two of the words must be the text's)
    words, covered = c.words, c.covered
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - 3):
        own = [w for w, cov in zip(words[i : i + 4], covered[i : i + 4]) if not cov]
        if len([w for w in own if w not in STOPWORDS]) < 2:
            continue
        gram = tuple(words[i : i + 4])
        if gram in seen:
            return ["repetitive text"]
        seen.add(gram)
    # three words twice, a title read as one word: "If you liked Star Trek, ... If you
    # liked Mission: Impossible, ..."
    tokens: list[str] = []
    for n, (w, cov) in enumerate(zip(words, covered)):
        if cov and n and covered[n - 1]:
            tokens[-1] += f"_{w}"
        else:
            tokens.append(f"<{w}" if cov else w)
    trigrams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    repeated = sorted(g for g, n in Counter(trigrams).items() if n > 1)
    for gram in repeated:
        if any(w not in STOPWORDS and not w.startswith("<") for w in gram):
            return [f"repeats '{' '.join(gram)}'"]
    # "<item>, a change from your usual Fitness picks, is a change from the usual"
    contrast = " ".join(TASTE_CHANGE.split()[1:3])  # "change from"
    if f" {' '.join(free)} ".count(f" {contrast} ") > 1:
        return [f"says '{contrast}' twice"]
    return []


def _check_numbers(c: _Context) -> list[str]:
    """Numbers and years must come from the evidence."""
    fact_numbers = {m.group(0).replace(",", "") for m in _NUMBER.finditer(c.facts)}
    fact_numbers |= {n.rstrip("s") for n in fact_numbers}
    for m in _NUMBER.finditer(c.text):
        number = m.group(0).replace(",", "")
        core = re.sub(r"(st|nd|rd|th|s)$", "", number)
        if number in fact_numbers or core in fact_numbers:
            continue
        if _YEAR.match(number):
            return [f"states a year not in the evidence ({number})"]
        return [f"states a number not in the evidence ({number})"]
    return []


def _check_genres(c: _Context) -> list[str]:
    """Genre and tag words outside a title must be the target's own: a user's tags (the
    evidence items') are not the item's."""
    free = " " + " ".join(c.free_words) + " "
    for tag in c.index.tag_words:
        if (f" {tag} " in free or f" {tag}s " in free) and (
            f" {tag} " not in c.own_norm and f" {tag}s " not in c.own_norm
        ):
            return [f"states a genre not in the evidence ({tag})"]
    return []


def _check_media(c: _Context) -> list[str]:
    """So must words for a kind of work ("TV series", "novel", "sequel")."""
    free = " " + " ".join(c.free_words) + " "
    for word, licences in _MEDIA_WORDS.items():
        if f" {word} " in free and not any(f" {w} " in c.fact_norm for w in licences):
            return [f"calls it something the evidence does not ({word})"]
    return []


def _check_names(c: _Context) -> list[str]:
    """Capitalized words past a sentence start name people, studios, places, awards:
    facts that must come from the evidence (or be another item's title, reported
    already). Only names count as evidence here -- titles, tags, the target's own text,
    the plan's values, the query -- not the wording of the plan's statements, so a
    statement pasted mid-sentence ("a running shoe, Matches your interest") is no name."""
    named = [_item_facts(c.target, with_text=True)]
    named += [_item_facts(e, with_text=False) for e in c.evidence]
    named += [" ".join(f.values) for f in c.plan if f.kind != "taste"] + [c.query or ""]
    fact_words = set(_with_aliases(normalize(" ".join(named))).split())
    fact_words |= {w for tag in c.index.tag_words for w in tag.split()}
    fact_words |= c.other_titles[1]
    # the user's usual kind is named only as "a change from your usual <kind>", at those
    # words (:attr:`_Context.taste_covered`; "a Change from ..." too), nowhere else
    unknown, at, covered = [], 0, c.taste_covered
    for piece in pieces(c.text):
        n = len(piece.words)
        in_taste = any(covered[at : at + n])
        at += n
        if piece.first.isupper() and not piece.sentence_start and not in_taste:
            unknown += [
                piece.raw for w in piece.words if w not in fact_words and w not in _PROPER_OK
            ]
    # A hyphenated name must be the evidence's as a whole: "a Climate-focused plan" names
    # nothing because the tag "Climate" is one (a usual kind "Sci-Fi" in its phrase is).
    named_raw = " ".join(named).casefold()
    unknown += [
        m.group(0)
        for m in _HYPHENATED.finditer(c.text)
        if m.group(0).casefold() not in named_raw
        and not c.text[: m.start()].casefold().endswith((TASTE_CHANGE + " ", TASTE_SHORT + " "))
    ]
    if unknown:
        return ["names something not in the evidence: " + ", ".join(dict.fromkeys(unknown[:3]))]
    return []


#: A role a text gives a person ("directed by X", "a film by X") -> the item attributes
#: that may hold that person.
_ROLES = {
    "directed": ("director", "directors"),
    "film": ("director", "directors"),
    "movie": ("director", "directors"),
    "written": ("writer", "writers"),
    "starring": ("cast", "actors", "stars"),
}
_ROLE_CLAIM = re.compile(r"\b(directed|written|film|movie)\s+by\s+|\b(starring)\s+", re.IGNORECASE)
_PERSON = re.compile(r"[A-Z][\w.'-]*(?:\s+(?:[A-Z][\w.'-]*|de|di|van|von|der|la|le))*")


def _role_people(item: Item, keys: Sequence[str]) -> set[str] | None:
    """The normalized names ``item`` holds under ``keys``; ``None`` if it has none of them."""
    found: set[str] | None = None
    for key in keys:
        value = item.attributes.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        names = {normalize(v) for v in values if isinstance(v, str) and v.strip()}
        if names:
            found = (found or set()) | names
    return found


def _check_roles(c: _Context) -> list[str]:
    """A person named in a role ("directed by X", "written by X", "starring X") must hold
    that role in the item's own attributes (people from the evidence in another role are
    the classic swap: "directed by <its writer>")."""
    for match in _ROLE_CLAIM.finditer(c.text):
        role = (match.group(1) or match.group(2)).lower()
        people = _role_people(c.target, _ROLES[role])
        if people is None:
            if role in ("film", "movie"):
                continue  # "a film by" with no director known: the names check covers it
            people = set()
        # every name of a list: "starring Kevin Bacon, Barry Levinson and Brad Pitt"
        at = match.end()
        while (person := _PERSON.match(c.text, at)) is not None:
            name = normalize(person.group(0))
            if not any(name == p or name.startswith(p + " ") or p.startswith(name) for p in people):
                return [f"gives {person.group(0)!r} a role ({role}) the item's data does not"]
            more = _LIST_GAP.match(c.text, person.end())
            listed = _PERSON.match(c.text, more.end()) if more is not None else None
            if listed is None or (
                "and" not in more.group(0)
                and not _LIST_NEXT.match(c.text, listed.end())  # "Michael Mann, Heat is"
            ):
                break
            at = more.end()
    return []


#: "You're a big time show winner", "You were a poor but hopeful boy": the reader cast
#: as someone (a small model addressing the reader as the story's hero). "a fan of" is a
#: liking, which the relation checks judge.
_READER_IS = re.compile(
    r"\byou(?:'re|\s+are|\s+were)\s+(?:a|an|the)\s+(?!(?:big\s+|huge\s+)?fans?\b)", re.IGNORECASE
)


def _check_reader(c: _Context) -> list[str]:
    """No text says who or what the reader is: no plan fact holds it."""
    match = _READER_IS.search(c.text)
    return [f"says who the reader is ({match.group(0).strip()} ...)"] if match else []


#: "starring a detective", "based on a classic tale": what the item holds, said in words.
_ROLE_NOUN = re.compile(
    r"\b(?:starring|based on)\s+(?:a|an|the)\s+((?:[a-z][\w'-]*\s+){0,2}[a-z][\w'-]*)",
    re.IGNORECASE,
)


def _check_role_nouns(c: _Context) -> list[str]:
    """Who stars in an item and what it is based on, said as a common noun ("starring a
    detective", "based on a classic tale"), must be words of the item's own data."""
    known = set(normalize(c.facts).split())
    for match in _ROLE_NOUN.finditer(c.text):
        said = [w for w in normalize(match.group(1)).split() if w not in STOPWORDS]
        missing = [w for w in said if w not in known and w.removesuffix("s") not in known]
        if missing:
            return [f"says the item is {match.group(0)!r}, which its data does not say"]
    return []


#: What separates the names of a list: ", ", " and ", ", and ".
_LIST_GAP = re.compile(r",?\s+and\s+|,\s+(?=[A-Z])")
#: After a name a comma listed, what shows it is one of a list: another comma or "and",
#: or the sentence's end.
_LIST_NEXT = re.compile(r"\s*(?:,|and\b|[.!?;]|$)")


#: The checks, in the order their problems are listed.
_CHECKS: tuple[Callable[[_Context], list[str]], ...] = (
    _check_length,
    _check_form,
    _check_self_reference,
    _check_target,
    _check_other_titles,
    _check_repetition,
    _check_numbers,
    _check_genres,
    _check_media,
    _check_names,
    _check_roles,
    _check_role_nouns,
    _check_reader,
    _check_injected,
    _check_contacts,
    claims.check_shape,
    claims.check_identity,
    claims.check_relations,
    claims.check_figures,
    claims.check_status,
    claims.check_repeats,
    claims.check_pasted,
    claims.check_support,
    claims.check_pitch_support,
    claims.check_wording,
)


def verify_text(
    text: str,
    plan: Sequence[Fact] | None = None,
    *,
    target: Item,
    evidence: Sequence[Item] | None = None,
    catalog: Catalog,
    max_words: int = 40,
    query: str | None = None,
    kind: str = "reason",
    listed: Sequence[str] = (),
) -> Verification:
    """Check that ``text`` states only what its fact plan holds about ``target``.

    Problems found (each a short string in ``problems``): the text is empty, longer than
    ``max_words`` words, not the shape of its ``kind`` (a reason is one sentence, a pitch
    two or three, a headline at most 60 characters and more than the item's name), does
    not refer to the target (its title, without year and article, or a distinctive prefix
    of it), cites the target as
    the user's own evidence ("because you liked <target>"), names another catalog item
    that is neither the target nor an evidence item, says the item *is* something its own
    title, tags and attributes do not say nor its text calls it ("a Kids Hiking Boots"
    about a jacket, "a U.S. Army officer" about a film whose plot opens with one), or is
    its brand, or comes from another item ("a shoe from Trail Running Shoes"), names a
    brand it does not have, gives an aim of the user's no fact holds ("for your next
    adventure"),
    cites a history item without a relation in the plan or with another relation than the
    plan's ("fans of X" needs co-consumption, "the director of X" a shared director,
    "similar to X" or a "theme" similar text or a shared value), states a year or number
    the plan lacks, names a genre or tag the target lacks (the user's tags are not the
    item's), a status ("popular") the plan lacks, a kind of work ("TV series", "sequel")
    the evidence does not give, a capitalized word past a sentence start that the plan
    lacks (a person, brand, place or award), repeats itself ("zip-up zip-up"), pastes a
    fact whole into a sentence ("a running shoe, Matches your interest"), says the item
    is itself ("Headlamp 400 is a Headlamp 400"), puts a figure that is no share of
    people after "liked by", carries chat-template tokens, an echoed or removed
    instruction, or contact details. A
    ``summary`` must have every sentence supported by one sentence of the target's text
    or two adjacent ones.

    Args:
        text: The text to check (anything but a ``str`` counts as empty).
        plan: The fact plan (``Explanation.plan``). ``None``: built from ``target``,
            ``evidence`` and ``query`` alone (:func:`~llmrec.generation.plan.request_plan`:
            the evidence counts as the user's history, joined only by shared attributes).
        target: The recommended item.
        evidence: The user's history items the text may cite; ``None``: the items the
            plan's facts name (looked up in ``catalog``).
        catalog: The catalog whose other titles the text must not name.
        max_words: Word limit.
        query: The user's query, if any (its words are evidence).
        kind: ``"reason"``, ``"pitch"``, ``"summary"``, ``"headline"`` or ``"digest"``.
        listed: For a digest, the ids of the other listed items (among ``evidence``).

    Returns:
        A :class:`Verification`.

    Raises:
        InvalidInputError: an unknown ``kind`` or a plan that holds no Facts.
    """
    kind = check_choice(kind, "kind", claims.CONTENT_KINDS, error=InvalidInputError)
    text = text if isinstance(text, str) else ""
    if not text.strip():
        return Verification(False, ("empty text",))
    if plan is None:
        plan = request_plan(target, tuple(evidence or ()), query=query)
    plan = tuple(plan)
    if not all(isinstance(f, Fact) for f in plan):
        raise InvalidInputError("plan must hold llmrec.Fact values")
    if evidence is None:
        evidence = _plan_items(plan, catalog, target)
    context = _Context(text, target, tuple(evidence), catalog, max_words, query, plan, kind)
    context.listed = frozenset(listed)
    problems = tuple(problem for check in _CHECKS for problem in check(context))
    return Verification(not problems, problems)


def _plan_items(plan: Sequence[Fact], catalog: Catalog, target: Item) -> tuple[Item, ...]:
    """The catalog items a plan's facts name, other than the target."""
    out = []
    for item_id in dict.fromkeys(f.item_id for f in plan if f.item_id is not None):
        if item_id != target.item_id and item_id in catalog:
            out.append(catalog.get(item_id))
    return tuple(out)
