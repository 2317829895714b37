"""News: articles with full text, readers' histories, and for each recommended article a
short lead plus a personalized reason, streamed as each one is written.

The lead is the article's first sentence (an extract, not generated); the reason is the
grounded sentence the ContentGenerator writes for this reader from the catalog facts and
the reader's history only.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python examples/news.py [--real-models]

By default it uses the model-free ``hashing`` encoder and template text, so it runs in a
few seconds anywhere; ``--real-models`` uses the embedded all-MiniLM-L6-v2 encoder and
SmolLM2 language model instead.
"""

from __future__ import annotations

import argparse
import re
import time

import llmrec
from llmrec import Event, Item

# (id, section, headline, body)
ARTICLES = [
    ("n01", "science", "Telescope spots water vapour on a distant exoplanet",
     "Astronomers using a space telescope have detected water vapour in the atmosphere of an "
     "exoplanet orbiting a red dwarf. The planet is larger than Earth and may be rocky. "
     "Researchers say the finding sharpens the search for habitable worlds."),
    ("n02", "science", "Gene therapy restores some vision in rare blindness",
     "A gene therapy trial restored partial vision to patients with a rare inherited form of "
     "blindness. Patients could read large letters a year after a single injection. "
     "Doctors caution that the trial was small."),
    ("n03", "science", "Ancient DNA rewrites the story of early farmers",
     "Ancient DNA from skeletons across Europe shows that early farmers arrived in several "
     "waves. The genomes reveal mixing with hunter-gatherers over centuries. "
     "Archaeologists call it a new map of prehistory."),
    ("n04", "science", "Mars rover finds layered rocks in an old river delta",
     "The Mars rover has photographed layered rocks in a dried river delta inside a crater. "
     "Scientists think the layers were laid down by flowing water billions of years ago. "
     "Samples will be stored for a future return mission."),
    ("n05", "climate", "Record ocean heat bleaches reefs across three oceans",
     "Marine heatwaves have bleached coral reefs in the Pacific, Atlantic and Indian oceans. "
     "Scientists say ocean heat hit a record for the second year. "
     "Some reefs may recover if temperatures fall."),
    ("n06", "climate", "Glaciers in the Alps lost a tenth of their ice in two years",
     "Swiss glaciers lost ten percent of their volume in two hot summers, a survey found. "
     "Small glaciers are vanishing entirely. "
     "Glaciologists link the melt to climate change and low winter snow."),
    ("n07", "climate", "Solar and wind overtake coal in the power grid",
     "Solar panels and wind turbines produced more electricity than coal for the first time "
     "this year. Cheap batteries helped shift solar power into the evening. "
     "Grid operators warn that transmission lines lag behind."),
    ("n08", "climate", "Cities plant shade trees to fight heatwaves",
     "City councils are planting thousands of shade trees to cool streets during heatwaves. "
     "Tree cover can lower street temperatures by several degrees. "
     "Planners say the benefits take a decade to grow."),
    ("n09", "technology", "New battery chemistry promises cheaper electric cars",
     "A sodium-ion battery chemistry could cut the cost of electric cars, its makers say. "
     "The cells use no lithium or cobalt. "
     "Range is lower, but fast charging works in the cold."),
    ("n10", "technology", "Open-source language models close the gap",
     "Open-source language models now match closed models on many benchmarks. "
     "Developers can run them on their own servers and fine-tune them. "
     "Critics point to the energy cost of training."),
    ("n11", "technology", "Chip makers race to build factories at home",
     "Governments are paying chip makers to build semiconductor factories at home. "
     "The plants take years to finish and need skilled workers. "
     "Analysts expect a glut of older chips."),
    ("n12", "technology", "Quantum computer corrects its own errors",
     "A quantum computer kept a logical qubit alive longer than its physical qubits, "
     "a milestone for error correction. Useful machines still need far more qubits. "
     "The result was published in a physics journal."),
    ("n13", "sport", "Underdogs win the cup final on penalties",
     "The underdogs won the cup final on penalties after a goalless draw. "
     "Their goalkeeper saved two spot kicks. "
     "Fans celebrated in the streets until morning."),
    ("n14", "sport", "Marathon record falls in cool conditions",
     "The marathon world record fell by thirty seconds in cool, still conditions. "
     "The winner ran negative splits and new carbon-plated shoes. "
     "Coaches credit altitude training camps."),
    ("n15", "sport", "Cycling team unveils a lighter climbing bike",
     "A cycling team unveiled a lighter climbing bike ahead of the mountain stages. "
     "The frame weighs under seven kilograms. "
     "Riders tested it on the steepest pass of the race."),
    ("n16", "sport", "Tennis teenager reaches her first grand slam final",
     "A seventeen-year-old reached her first grand slam tennis final. "
     "She beat the top seed in three sets. "
     "Her coach says her serve has improved the most."),
    ("n25", "sport", "Swimmer breaks the 400 metres world record",
     "A nineteen-year-old swimmer broke the 400 metres freestyle world record at the national "
     "championships. She led from the first length. "
     "Her coach says she trains twice a day."),
    ("n26", "sport", "Mountain stage reshapes the cycling race",
     "A brutal mountain stage reshaped the cycling race as the leader cracked on the final "
     "climb. A young rider took the yellow jersey. "
     "Three more mountain stages remain."),
    ("n17", "culture", "Museum returns looted bronzes",
     "A national museum returned looted bronze sculptures to the country they were taken from. "
     "The handover ended years of negotiation. "
     "Curators will tour the pieces before a new museum opens."),
    ("n18", "culture", "Indie game about grief wins top award",
     "An indie video game about grief and a lighthouse won the top award at a games festival. "
     "The small studio made it in four years. "
     "Players praised its hand-drawn art and music."),
    ("n19", "culture", "Novelist's debut tops the bestseller list",
     "A debut novel about three sisters and a failing vineyard topped the bestseller list. "
     "Critics praised its humour. "
     "A film adaptation is planned."),
    ("n20", "culture", "Orchestra performs in a flooded quarry",
     "An orchestra performed a concert on rafts in a flooded quarry. "
     "Audiences listened from the cliffs above. "
     "The acoustics surprised the conductor."),
    ("n21", "business", "Central bank holds interest rates steady",
     "The central bank held interest rates steady as inflation eased. "
     "Markets expect a cut later in the year. "
     "Mortgage holders still face high repayments."),
    ("n22", "business", "Supermarkets cut prices as food inflation cools",
     "Supermarkets cut the price of staples as food inflation cooled. "
     "Shoppers had switched to cheaper own brands. "
     "Farmers say their costs remain high."),
    ("n23", "business", "Start-up raises funds to recycle battery metals",
     "A start-up raised new funding to recover lithium and nickel from old batteries. "
     "Its plant will process electric car batteries at the end of their life. "
     "Investors see recycling as key to supply chains."),
    ("n24", "business", "Airline orders fuel-efficient jets",
     "An airline ordered a hundred fuel-efficient jets to replace older planes. "
     "The new aircraft burn a fifth less fuel. "
     "Deliveries start in three years."),
]

# What a few readers read (in order); fit learns from it.
READERS = {
    "priya": ["n01", "n04", "n05", "n12"],      # space and climate
    "jonas": ["n13", "n16", "n14"],             # sport
    "mei": ["n09", "n10", "n11", "n23"],        # technology
    "carlos": ["n21", "n22", "n24", "n23"],     # business
    "ana": ["n17", "n18", "n19", "n20"],        # culture
    "li": ["n05", "n06", "n07", "n08"],         # climate
    "sara": ["n02", "n03", "n01", "n04"],       # science
    "tom": ["n07", "n09", "n23", "n06"],        # energy
    "eva": ["n10", "n12", "n11", "n18"],        # tech and games
    "ben": ["n14", "n15", "n13", "n24"],        # sport and travel
    "olga": ["n03", "n17", "n02", "n19"],       # history and culture
    "raj": ["n21", "n09", "n07", "n11"],        # markets and tech
}


def lead(body: str) -> str:
    """The article's first sentence."""
    return re.split(r"(?<=[.!?])\s+", body.strip(), maxsplit=1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-models", action="store_true",
                        help="use the embedded encoder and language model (slower)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = parser.parse_args()
    started = time.perf_counter()

    items = [Item(item_id=i, title=headline, text=body, attributes={"tags": [section]})
             for i, section, headline, body in ARTICLES]
    if args.real_models:
        options = dict(encoder="default", llm="default")
    else:
        options = dict(encoder="hashing", encoder_options={"dim": 1024}, llm="template")
    pipe = llmrec.Pipeline.from_catalog(items, device=args.device, models=("ease",),
                                        show_progress=False, **options)
    events = [Event(user_id=user, item_id=item, kind="click", timestamp=float(n))
              for user, read in READERS.items() for n, item in enumerate(read)]
    pipe.fit(events, seed=0, show_progress=False)
    print(f"Newsroom: {len(pipe.catalog)} articles, {len(READERS)} readers "
          f"(encoder={pipe.encoder.backend.name}, llm={options['llm']})")

    # A reader who finished one article and skipped another; both count at once.
    pipe.observe(Event(user_id="priya", item_id="n02", kind="like"))
    pipe.observe(Event(user_id="priya", item_id="n13", kind="skip"))
    for user_id in ("priya", "jonas"):
        history = [pipe.catalog.get(i).title for i in pipe.profile(user_id).recent_items(3)]
        print(f"\nFor {user_id} (recently read: {'; '.join(history)}):")
        # recommend_stream yields each article as soon as its text is written.
        for rec in sorted(pipe.recommend_stream(user_id, k=3), key=lambda r: r.rank):
            article = pipe.catalog.get(rec.item_id)
            print(f"  {rec.rank}. [{article.attributes['tags'][0]}] {article.title}")
            print(f"     Lead: {lead(article.text)}")
            print(f"     Why you: {rec.text} ({rec.text_source})")

    # Breaking news is searchable by the next request.
    pipe.add_items([Item(item_id="n99", title="Space telescope finds a second ocean world",
                         text="Astronomers using a space telescope found water vapour on a "
                              "second exoplanet, hinting at an ocean world. The planet orbits "
                              "a quiet red dwarf.",
                         attributes={"tags": ["science"]})])
    recs = pipe.recommend("priya", k=3)
    print("\nBreaking news added; priya's top 3 now:")
    for rec in recs:
        print(f"  {rec.rank}. {pipe.catalog.get(rec.item_id).title} -- {rec.text}")
    print(f"\nDone in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
