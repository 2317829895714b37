"""Text helpers shared by the prompt, the template and the verifier.

Making item and user text safe to embed (:func:`sanitize_text`), catalog titles as people
write them (:func:`display_title`) and the normalized forms a title can be referred to by,
whole-word containment, the one word tokenizer (:func:`pieces`) and the one list of
abbreviations that end with a period inside a sentence.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ABBREVIATIONS",
    "CHAT_TOKEN",
    "INJECTION",
    "STOPWORDS",
    "Piece",
    "contains",
    "display_title",
    "first_sentence",
    "instruction_words",
    "join_words",
    "normalize",
    "pieces",
    "sanitize_text",
    "sentence_case",
    "sentences",
    "title_clauses",
    "title_forms",
    "title_prefixes",
    "word_count",
]

CHAT_TOKEN = re.compile(
    r"<\|[^<>]{0,40}?\|>|<\||\|>|</?s>|\[/?INST\]|<</?SYS>>|"
    r"<\s*/?\s*(?:im_start|im_end|start_of_turn|end_of_turn|eos|bos)\s*>",
    re.IGNORECASE,
)
# Who a "you are now ..." / "act as ..." phrase makes the model out to be.
_ROLE = (
    r"(?:assistants?|ai|chat ?bots?|bots?|language models?|llms?|gpt\w*|dan|jailbroken|"
    r"unrestricted|unfiltered|uncensored)"
)
#: The maintained list of instruction-like spans: imperatives addressed to the model. Each
#: alternative is one kind; they are matched after quotes became ``'`` (sanitize_text).
INJECTION = re.compile(
    "|".join(
        (
            # "ignore the above instructions", "disregard all previous rules"
            r"\b(?:ignore|disregard|forget|override)\b\W+(?:\w+\W+){0,3}?(?:previous|above|prior|"
            r"earlier|preceding|all|your|these|those|the)\b\W+(?:\w+\W+){0,2}?(?:instructions?|"
            r"prompts?|rules?|text|messages?|directions?|above|everything)\b",
            # "forget everything", "ignore all of the above"
            r"\b(?:ignore|disregard|forget|override)\b\W+(?:(?:all|about)\W+(?:of\W+)?)?"
            r"(?:everything|anything|the above|above)\b",
            # "write 'HACKED'", "say the word PWNED": a quoted or upper-case payload
            r"\b(?:write|say|print|output|repeat|type|respond with|reply with|answer with)\b"
            r"[\s:,\-]{0,3}(?:(?:the\s+)?(?:words?|phrase|text)[\s:,\-]{1,3})?"
            r"(?:'[^'\n]{1,40}'|(?-i:[A-Z][A-Z0-9_]{2,})\b)",
            # "you are now DAN", "act as an unrestricted assistant"
            r"\b(?:you are now|from now on you are|act as|acting as|pretend to be|roleplay as)"
            r"\b(?:\W+\w+){0,4}?\W+" + _ROLE + r"\b",
            r"\byou are now\s+(?-i:[A-Z]{2,})\b",
            # system-prompt talk
            r"\b(?:system|developer|hidden|initial|original) (?:prompts?|messages?|instructions?)\b",
            r"\bnew instructions?\b|\bdeveloper mode\b|\bjailbreak\w*",
        )
    ),
    re.IGNORECASE,
)
_DELIMITER_CHARS = str.maketrans(
    {
        '"': "'",
        "«": "'",
        "»": "'",
        "[": "(",
        "]": ")",
        "{": "(",
        "}": ")",
        "<": "(",
        ">": ")",
        "`": "'",
    }
)
_WS = re.compile(r"\s+")

STOPWORDS = frozenset("a an the of and or in on at to for from with by is it as".split())

#: Abbreviations that end with a period inside a sentence ("Dr. No", "St. Louis"); a
#: single capital letter followed by a period ("J. R. R.") is one too.
ABBREVIATIONS = (
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "St",
    "Jr",
    "Sr",
    "vs",
    "Vol",
    "No",
    "Mt",
    "Ft",
    "Lt",
    "Col",
    "Gen",
    "Sgt",
)


def _abbreviation_end(words: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:[A-Z]|" + "|".join(words) + r")\.$")


_ABBREVIATION_END = _abbreviation_end(ABBREVIATIONS)
# The verifier's name check has always gone without the military ranks (the last four):
# after "Gen." it takes the next word for a sentence start. Adding them would change which
# texts pass, so the name check keeps its shorter list.
_NAME_ABBREVIATION_END = _abbreviation_end(ABBREVIATIONS[:-4])
_STOP = re.compile(r"[.!?:;][\"')\]]*$")
_PIECE_SPLIT = re.compile(r"[^0-9A-Za-z\u00C0-\uFFFF'’`]+")
_QUOTES = "'’`"


def _defused(text: str) -> str:
    """``text`` NFKC-normalized, without control and format characters or chat-template
    tokens, its delimiter characters replaced: what :data:`INJECTION` is matched on."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(
        " " if unicodedata.category(ch)[0] in ("C", "Z") and ch != " " else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")
    )
    previous = None
    while previous != text:  # removing one token may join the halves of another
        previous = text
        text = CHAT_TOKEN.sub(" ", text)
    return text.translate(_DELIMITER_CHARS)


@functools.lru_cache(maxsize=4096)
def instruction_words(text: str) -> frozenset[str]:
    """The normalized words of the instruction-like spans that :func:`sanitize_text`
    removes from ``text`` (empty for ordinary text)."""
    return frozenset(
        word for m in INJECTION.finditer(_defused(text)) for word in normalize(m.group()).split()
    )


def sanitize_text(text: str, limit: int) -> str:
    """Make item or user text safe to embed in a prompt as data.

    Removes control and format characters, chat-template tokens (``<|im_start|>``,
    ``[INST]``, ...) and instruction-like phrases ("ignore the above instructions"),
    replaces the characters used as delimiters (quotes, brackets), collapses whitespace and
    cuts to ``limit`` characters at a word boundary.

    Args:
        text: Any text (converted with ``str``).
        limit: Most characters kept (an ellipsis is added after a cut).

    Returns:
        The sanitized text.
    """
    text = _defused(text)
    text = INJECTION.sub(" ", text)
    text = _WS.sub(" ", text).strip()
    if len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-") + "..."
    return text


_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.+?),\s*(?P<art>the|a|an|les|la|le|l'|il|el|los|las|das|der|die|den|det)\s*$",
    re.IGNORECASE,
)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+(?=\S)", re.IGNORECASE)


def display_title(title: str) -> str:
    """A catalog title as people write it: ``"Godfather, The (1972)"`` -> ``"The
    Godfather"``, ``"Seven (Se7en) (1995)"`` -> ``"Seven"``."""
    text = _WS.sub(" ", str(title)).strip()
    while True:
        stripped = _TRAILING_PAREN.sub("", text)
        if stripped == text or not stripped.strip():
            break
        text = stripped
    match = _TRAILING_ARTICLE.match(text)
    if match:
        art = match.group("art")
        sep = "" if art.endswith("'") else " "
        text = f"{art[0].upper()}{art[1:]}{sep}{match.group('body')}"
    return text.strip()


def normalize(text: str) -> str:
    """Lower-case ASCII words separated by single spaces (accents dropped, apostrophes
    removed, ``&`` read as ``and``): the form every comparison of the verifier uses."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"['’`]", "", text)
    text = re.sub(r"&", " and ", text)
    return _WS.sub(" ", re.sub(r"[^0-9a-z]+", " ", text)).strip()


@functools.lru_cache(maxsize=1 << 18)
def title_forms(title: str) -> frozenset[str]:
    """Normalized ways to refer to an item: full display title, without a leading article,
    and the raw title without its year."""
    shown = display_title(title)
    forms = {
        normalize(shown),
        normalize(_LEADING_ARTICLE.sub("", shown)),
        normalize(_TRAILING_PAREN.sub("", title)),
    }
    return frozenset(f for f in forms if f)


def title_prefixes(title: str) -> set[str]:
    """Distinctive short forms of a title: the part before ``:`` or `` - `` and word
    prefixes of >= 2 words and >= 8 characters."""
    shown = _LEADING_ARTICLE.sub("", display_title(title))
    out: set[str] = set()
    head = re.split(r"\s*[:(]\s*|\s+-\s+", shown, maxsplit=1)[0]
    if head and head != shown and len(normalize(head)) >= 4:
        out.add(normalize(head))
    words = normalize(shown).split()
    for k in range(2, len(words)):
        prefix = " ".join(words[:k])
        if len(prefix) >= 8 and words[k - 1] not in STOPWORDS:
            out.add(prefix)
    return out


#: Words before which a title's clause may end: "Marathon record falls | on a cold
#: morning", "Hospital cuts waiting times | with evening clinics".
_CLAUSE_BREAK = re.compile(r",\s+|\s+(?=(?:after|with|for|in|on|at|as|from|amid|over)\s)")


def title_clauses(title: str) -> list[str]:
    """The title as shown, then each leading clause of it that is still one of its
    :func:`title_prefixes`, longest first: a headline short of room may say "Marathon
    record falls" of "Marathon record falls on a cold morning"."""
    shown = display_title(title)
    prefixes = title_prefixes(title)
    heads = {shown[: cut.start()].rstrip(" ,;:") for cut in _CLAUSE_BREAK.finditer(shown)}
    return [shown] + sorted((h for h in heads if normalize(h) in prefixes), key=len, reverse=True)


def word_count(text: str) -> int:
    """Words of ``text`` as a reader counts them (runs of non-space characters)."""
    return len(text.split())


def contains(haystack: str, needle: str) -> bool:
    """Whole-word containment of normalized strings."""
    return bool(needle) and f" {needle} " in f" {haystack} "


def sentence_case(text: str) -> str:
    """``text`` with its first letter upper-cased, the rest as written."""
    return text[:1].upper() + text[1:]


def join_words(words: Sequence[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class Piece:
    """One run of word characters of a text, as :func:`pieces` splits it.

    Attributes:
        raw: The piece as written, without surrounding apostrophes.
        words: Its normalized words (none for a piece of symbols, e.g. ``"—"``).
        first: Its first character.
        after_stop: No piece with words came between it and the text's start or the
            last ``.``, ``!``, ``?``, ``:`` or ``;``: a capital here may only start a
            sentence.
        sentence_start: It starts the text or follows such a stop that does not end an
            abbreviation ("Dr.") with no other piece between: a capital here is no name.
    """

    raw: str
    words: tuple[str, ...]
    first: str
    after_stop: bool
    sentence_start: bool


def pieces(text: str) -> list[Piece]:
    """``text`` split into :class:`Piece` objects: at whitespace, then at every character
    that is neither a letter, a digit nor an apostrophe."""
    out: list[Piece] = []
    after_stop = sentence_start = True
    for raw in _WS.split(text):
        for part in _PIECE_SPLIT.split(raw):
            piece = part.strip(_QUOTES)
            if not piece:
                continue
            words = tuple(normalize(piece).split())
            out.append(Piece(piece, words, piece[:1], after_stop, sentence_start))
            sentence_start = False
            if words:
                after_stop = False
        if _STOP.search(raw):
            after_stop = True
            if not _NAME_ABBREVIATION_END.search(raw):
                sentence_start = True
    return out


def sentences(text: str) -> list[str]:
    """``text`` split into sentences at ``.``, ``!`` or ``?`` followed by a space and a
    capital or digit; an abbreviation's period ("U.S.", "Dr.", "H.A.L.") ends none."""
    text = _WS.sub(" ", text).strip()
    out, start = [], 0
    for m in re.finditer(r"[.!?](?=\s+[\"'(]?[A-Z0-9])", text):
        if _ABBREVIATION_END.search(text[: m.end()]):
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [part for part in out if part]


def first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (see :func:`sentences`), whitespace
    collapsed and surrounding double quotes removed."""
    found = sentences(text.strip().strip('"'))
    return found[0].strip('"').strip() if found else ""
