"""Quickstart: a small bookshop catalog, a few events, recommendations with reasons.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python examples/quickstart.py [--llm template]
"""

from __future__ import annotations

import argparse

import llmrec
from llmrec import Event, Item

BOOKS = [
    ("b1", "Dune", "Desert planet, prophecy and politics.", ["Science Fiction"], 1965),
    ("b2", "Foundation", "A mathematician predicts the fall of an empire.", ["Science Fiction"], 1951),
    ("b3", "Neuromancer", "A hacker is hired for one last job in cyberspace.", ["Science Fiction", "Cyberpunk"], 1984),
    ("b4", "The Hobbit", "A homebody hobbit joins a treasure hunt with dwarves.", ["Fantasy"], 1937),
    ("b5", "A Wizard of Earthsea", "A young mage unleashes a shadow and must hunt it.", ["Fantasy"], 1968),
    ("b6", "The Name of the Wind", "An innkeeper tells the story of his life as a legend.", ["Fantasy"], 2007),
    ("b7", "Gone Girl", "A wife disappears; her husband becomes the suspect.", ["Thriller", "Mystery"], 2012),
    ("b8", "The Girl with the Dragon Tattoo", "A journalist and a hacker investigate a disappearance.", ["Thriller", "Mystery"], 2005),
    ("b9", "Pride and Prejudice", "Elizabeth Bennet and Mr Darcy misjudge each other.", ["Romance", "Classic"], 1813),
    ("b10", "Hyperion", "Pilgrims tell their tales on the way to the Time Tombs.", ["Science Fiction"], 1989),
    ("b11", "Snow Crash", "A pizza courier and hacker uncovers a linguistic virus.", ["Science Fiction", "Cyberpunk"], 1992),
    ("b12", "Mistborn", "A street thief learns to burn metals for magic.", ["Fantasy"], 2006),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", default="default", help="default (embedded SmolLM2) or template")
    args = parser.parse_args()

    items = [Item(item_id=i, title=t, text=x, attributes={"genres": g, "year": y})
             for i, t, x, g, y in BOOKS]
    pipe = llmrec.Pipeline.from_catalog(items, llm=args.llm, device="auto", show_progress=False)

    # History: a few readers; fit learns co-occurrence, popularity and the ranker weights.
    readers = {"ana": ["b1", "b2", "b10"], "ben": ["b4", "b5", "b12"], "cy": ["b3", "b11", "b1"],
               "dee": ["b7", "b8"], "eli": ["b1", "b10", "b3"], "fay": ["b4", "b6", "b5"]}
    events = [Event(user_id=u, item_id=i, kind="purchase", timestamp=float(n))
              for u, books in readers.items() for n, i in enumerate(books)]
    pipe.fit(events, show_progress=False)

    pipe.observe(Event(user_id="new", item_id="b3", kind="like"))  # a brand-new reader
    for rec in pipe.recommend("new", k=3):
        title = pipe.catalog.get(rec.item_id).title
        print(f"{rec.rank}. {title:<32} {rec.score:.3f}  ({rec.text_source}) {rec.text}")

    # A new user with no history, only a stated taste: recommended from the text alone.
    print()
    pipe.add_user("gus", preferences="young wizards, magic and dragons")
    for rec in pipe.recommend("gus", k=3, generate=False):
        print(f"{rec.rank}. {pipe.catalog.get(rec.item_id).title}")

if __name__ == "__main__":
    main()
