"""Privacy at the API boundary: redaction of contact details and keyed pseudonymization.

:func:`redact` replaces e-mail addresses and phone numbers in free text that users write
(queries, stated preferences) with ``[email]`` and ``[phone]``; the pipeline applies it
before such text is stored in a profile, written to the event log or put into a prompt.
With ``urls=True`` it replaces web addresses with ``[url]`` too: the generator applies
that to item text before a prompt, and :func:`has_contact` tells whether a text holds any.
:class:`Pseudonymizer` maps user ids to keyed HMAC-SHA256 pseudonyms, so saves and logs
never hold a raw id.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from llmrec.errors import ConfigError, InvalidInputError

__all__ = ["EMAIL_TOKEN", "PHONE_TOKEN", "URL_TOKEN", "Pseudonymizer", "has_contact", "redact"]

EMAIL_TOKEN = "[email]"
PHONE_TOKEN = "[phone]"
URL_TOKEN = "[url]"

# The look-behinds pin each match to the start of a token, so a long run of word
# characters is scanned once, not once per position (no quadratic blow-up on hostile text).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
# A scheme or "www." address, or a bare host name under a common top-level domain
# ("shop.example.org/deal"); the list is short so that "St.Louis" or "U.S.A." stay text.
_URL = re.compile(
    r"(?<![\w@.\-/])(?:(?:https?|ftp)://|www\.)[^\s<>'\"()\[\]{}]+"
    r"|(?<![\w@.\-/])(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.){1,8}"
    r"(?:com|org|net|edu|gov|io|co|info|biz|app|dev|ai|me|tv|ly|uk|de|fr|ru|cn|jp|us|eu)"
    r"(?![\w\-])(?:/[^\s<>'\"()\[\]{}]*)?",
    re.IGNORECASE,
)
_URL_TAIL = ".,;:!?"
# A run of digits and parenthesized digit groups joined by at most one space, dot or
# hyphen, optionally led by "+"; which runs are phone numbers is decided in _is_phone.
_PHONE_CANDIDATE = re.compile(r"(?<!\w)\+?(?:\(\d{1,5}\)|\d)(?:[ .\-]?(?:\(\d{1,5}\)|\d))*(?!\w)")
_GROUP_SPLIT = re.compile(r"[ .\-()]+")
_MIN_DIGITS, _MAX_DIGITS = 7, 15


def _looks_like_years(groups: list[str]) -> bool:
    return all(len(g) == 4 and g[:2] in ("18", "19", "20") for g in groups)


def _is_phone(span: str) -> bool:
    digits = sum(ch.isdigit() for ch in span)
    if not _MIN_DIGITS <= digits <= _MAX_DIGITS:
        return False
    groups = [g for g in _GROUP_SPLIT.split(span.lstrip("+")) if g]
    if _looks_like_years(groups):
        return False  # "1990 1995 2000", "1990-2010"
    if span.startswith("+") or "(" in span:
        return True  # "+44 20 7946 0958", "(415) 555-2671"
    sizes = [len(g) for g in groups]
    if digits >= 10:
        # "415 555 2671", "0151 23456789", "0033 6 12 34 56 78"; not "3.14159265358".
        return "." not in span or min(sizes) >= 2
    # Local numbers: "555-2671", "555 123 456"; not a date ("2024-01-15" has 8 digits
    # in 4-2-2) nor a range ("1990-1995").
    return (
        sizes in ([3, 4], [3, 3, 3], [4, 4])
        and not _looks_like_years(groups[:1])
        and "." not in span
    )


def _replace_phone(match: re.Match[str]) -> str:
    span = match.group(0)
    return PHONE_TOKEN if _is_phone(span) else span


def _replace_url(match: re.Match[str]) -> str:
    span = match.group(0)
    tail = len(span) - len(span.rstrip(_URL_TAIL))  # a sentence's stop is no part of it
    return URL_TOKEN + span[len(span) - tail :] if tail else URL_TOKEN


def redact(text: str, *, urls: bool = False) -> str:
    """Replace e-mail addresses with ``[email]`` and phone numbers with ``[phone]``
    (and, with ``urls``, web addresses with ``[url]``).

    Phone numbers in the common international and national forms are recognized
    (``+44 20 7946 0958``, ``(415) 555-2671``, ``415.555.2671``, ``0151 23456789``,
    ``555-2671``); years, year ranges, dates, prices and small counts ("1995",
    "1990-1995", "2024-01-15", "2 cats") are left alone. The result of ``redact`` is a
    fixed point: redacting it again changes nothing.

    Args:
        text: The text.
        urls: Replace ``http(s)://``, ``www.`` and bare ``host.example.org`` addresses too.

    Raises:
        InvalidInputError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
    if "@" in text:
        text = _EMAIL.sub(EMAIL_TOKEN, text)
    if urls and "." in text:
        text = _URL.sub(_replace_url, text)
    return _PHONE_CANDIDATE.sub(_replace_phone, text)


def has_contact(text: str) -> bool:
    """Whether ``text`` holds an e-mail address, a phone number or a web address (what
    ``redact(text, urls=True)`` would replace)."""
    return redact(text, urls=True) != text


class Pseudonymizer:
    """Maps user ids to keyed pseudonyms: the hex HMAC-SHA256 of the id under ``key``.

    The same key always gives the same pseudonym, so a user keeps their profile across
    calls and restarts; without the key a pseudonym cannot be traced back to the id.

    Args:
        key: A secret of at least 16 bytes. Keep it outside the save directory.
    """

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
            raise ConfigError("pseudonymize_key must be bytes of length >= 16 (a secret key)")
        self._key = bytes(key)

    def __call__(self, user_id: str) -> str:
        return hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()

    @property
    def key_check(self) -> str:
        """A value that identifies the key without revealing it (stored in saves and logs,
        so a save is never opened with a different key)."""
        return hmac.new(
            self._key, b"llmrec pseudonymization key check", hashlib.sha256
        ).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_check={self.key_check!r})"
