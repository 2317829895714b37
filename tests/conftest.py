"""Shared fixtures: a seeded synthetic catalog with planted genre structure.

The catalog has 300 items in 6 genres; each genre has its own vocabulary, so the
model-free ``hashing`` encoder places items of one genre close together. Each synthetic
user has a favourite genre and picks 90% of their items from it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

from llmrec import Event, Item, Pipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")

settings.register_profile(
    "llmrec",
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("llmrec")

GENRES = ("comedy", "horror", "romance", "scifi", "western", "documentary")
VOCAB = {
    "comedy": "funny hilarious laugh joke slapstick witty gag prank sitcom parody",
    "horror": "scary ghost haunted blood monster nightmare zombie creepy terror scream",
    "romance": "love kiss wedding heart couple passion romantic affair date sweetheart",
    "scifi": "space robot alien galaxy spaceship laser planet future android starship",
    "western": "cowboy sheriff saloon ranch horse desert outlaw gunfight frontier cattle",
    "documentary": "history nature science archive interview footage wildlife journalism true facts",
}
COMMON = "story film people town night day life world friend family".split()
N_ITEMS = 300
N_USERS = 120
EVENTS_PER_USER = 15


#: A SequentialSource small enough to train in seconds on the planted test sequences.
SMALL_SEQUENTIAL = dict(
    hidden=32,
    layers=1,
    heads=2,
    max_len=10,
    dropout=0.1,
    epochs=40,
    lr=5e-3,
    batch_size=64,
    device="cpu",
    show_progress=False,
)


def make_items(n: int = N_ITEMS, seed: int = 0, prefix: str = "i") -> list[Item]:
    """``n`` items, genre ``GENRES[i % 6]``, text drawn from that genre's vocabulary."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        genre = GENRES[i % len(GENRES)]
        words = VOCAB[genre].split()
        text = (
            " ".join(rng.choice(words) for _ in range(8))
            + " "
            + " ".join(rng.choice(COMMON) for _ in range(4))
        )
        items.append(
            Item(
                f"{prefix}{i:03d}",
                f"{genre.title()} {rng.choice(words)} {i}",
                text,
                {"genres": [genre], "year": 1970 + (i % 50)},
            )
        )
    return items


def make_events(
    items: list[Item],
    n_users: int = N_USERS,
    per_user: int = EVENTS_PER_USER,
    p_fav: float = 0.9,
    seed: int = 1,
) -> tuple[list[Event], dict[str, str]]:
    """Events of users ``u000..``; user ``u`` favours ``GENRES[u % 6]``."""
    rng = random.Random(seed)
    by_genre = {g: [it.item_id for it in items if it.attributes["genres"][0] == g] for g in GENRES}
    all_ids = [it.item_id for it in items]
    events: list[Event] = []
    favourites: dict[str, str] = {}
    t = 1_000_000.0
    for u in range(n_users):
        uid = f"u{u:03d}"
        genre = GENRES[u % len(GENRES)]
        favourites[uid] = genre
        for _ in range(per_user):
            iid = rng.choice(by_genre[genre]) if rng.random() < p_fav else rng.choice(all_ids)
            t += 1.0
            events.append(
                Event(uid, iid, kind=rng.choice(["click", "click", "like", "view"]), timestamp=t)
            )
    return events, favourites


def no_network(monkeypatch) -> list:
    """Make every socket connect fail the test; the list of attempts (empty if none)."""
    import socket

    tried: list = []

    def refuse(*args, **kwargs):
        tried.append(args)
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tried


def small_save(path):
    """A fitted 40-item pipeline (template text, no trainable models) saved at ``path``."""
    items = make_items(40)
    events, _ = make_events(items, n_users=8, per_user=6)
    build_pipeline(items, models=()).fit(events, show_progress=False).save_pretrained(path)
    return path


def build_pipeline(items: list[Item], **options) -> Pipeline:
    options.setdefault("encoder", "hashing")
    options.setdefault("llm", "template")
    options.setdefault("device", "cpu")
    options.setdefault("show_progress", False)
    return Pipeline.from_catalog(items, **options)


@pytest.fixture(scope="session")
def items() -> list[Item]:
    return make_items()


@pytest.fixture(scope="session")
def genre_of(items: list[Item]) -> dict[str, str]:
    return {it.item_id: it.attributes["genres"][0] for it in items}


@pytest.fixture(scope="session")
def events_and_favourites(items: list[Item]) -> tuple[list[Event], dict[str, str]]:
    return make_events(items)


@pytest.fixture(scope="session")
def events(events_and_favourites) -> list[Event]:
    return events_and_favourites[0]


@pytest.fixture(scope="session")
def favourites(events_and_favourites) -> dict[str, str]:
    return events_and_favourites[1]


@pytest.fixture(scope="session")
def fitted_pipeline(items, events) -> Pipeline:
    """A fitted pipeline shared by read-only tests. Never mutate it."""
    return build_pipeline(items).fit(events, show_progress=False)


@pytest.fixture
def pipeline_factory(items, events) -> Callable[..., Pipeline]:
    """Builds a fresh (by default fitted) pipeline for tests that mutate it."""

    def factory(*, fit: bool = True, **options) -> Pipeline:
        pipe = build_pipeline(items, **options)
        return pipe.fit(events, show_progress=False) if fit else pipe

    return factory


@pytest.fixture
def fresh_pipeline(pipeline_factory) -> Pipeline:
    return pipeline_factory()
