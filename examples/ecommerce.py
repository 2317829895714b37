"""E-commerce: a small sports-and-gifts shop with categories, prices and shoppers.

Shows filters (an attribute mapping and a price predicate), a product added while the
shop is live, and a free-text request ("gift for a runner") from a visitor with no history.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python examples/ecommerce.py [--real-models]

By default it uses the model-free ``hashing`` encoder and template text, so it runs in a
few seconds anywhere; ``--real-models`` uses the embedded all-MiniLM-L6-v2 encoder and
SmolLM2 language model instead.
"""

from __future__ import annotations

import argparse
import time

import llmrec
from llmrec import Event, Item

# (id, title, category, price, description)
PRODUCTS = [
    ("p01", "Trail running shoes", "running", 129.0, "Grippy trail running shoes with a rock plate for rough mountain paths."),
    ("p02", "Road running shoes", "running", 119.0, "Light cushioned road running shoes for daily miles and marathon training."),
    ("p03", "Running socks (3 pairs)", "running", 18.0, "Blister-free merino running socks; a small gift every runner uses."),
    ("p04", "Hydration vest", "running", 89.0, "Trail running hydration vest with two soft flasks for long runs."),
    ("p05", "GPS running watch", "electronics", 249.0, "GPS watch for runners: pace, heart rate, intervals and race predictions."),
    ("p06", "Reflective running jacket", "running", 79.0, "Wind-proof running jacket with reflective strips for night runs."),
    ("p07", "Running headlamp", "running", 39.0, "Bright rechargeable headlamp for early-morning and trail runs; a gift for runners."),
    ("p08", "Foam roller", "fitness", 25.0, "Firm foam roller for recovery after running, cycling and gym sessions."),
    ("p09", "Compression sleeves", "running", 29.0, "Calf compression sleeves that help runners recover after long runs."),
    ("p10", "Race belt", "running", 15.0, "Elastic race number belt with a pocket for gels; a stocking-filler gift for a runner."),
    ("p11", "Energy gels (12)", "nutrition", 24.0, "Caffeine energy gels for marathon and trail running race days."),
    ("p12", "Electrolyte tablets", "nutrition", 12.0, "Electrolyte tablets for hydration on hot runs and rides."),
    ("p13", "Protein powder", "nutrition", 35.0, "Whey protein powder for recovery shakes after strength training."),
    ("p14", "Road bike helmet", "cycling", 99.0, "Ventilated road cycling helmet, light and aerodynamic."),
    ("p15", "Cycling gloves", "cycling", 22.0, "Padded cycling gloves for long rides on the road bike."),
    ("p16", "Bike lights set", "cycling", 45.0, "Front and rear USB bike lights for commuting and night rides."),
    ("p17", "Bike repair kit", "cycling", 32.0, "Multi-tool, tyre levers and patches for roadside bike repairs."),
    ("p18", "Cycling jersey", "cycling", 65.0, "Breathable cycling jersey with three back pockets."),
    ("p19", "Bike computer", "electronics", 199.0, "GPS bike computer with maps, power and heart-rate for cyclists."),
    ("p20", "Indoor bike trainer", "cycling", 399.0, "Smart indoor trainer for winter cycling workouts."),
    ("p21", "Hiking boots", "hiking", 149.0, "Waterproof leather hiking boots for multi-day mountain treks."),
    ("p22", "Trekking poles", "hiking", 59.0, "Folding carbon trekking poles for steep hiking trails."),
    ("p23", "Daypack 25L", "hiking", 69.0, "Light 25 litre hiking daypack with a rain cover."),
    ("p24", "Water filter bottle", "hiking", 34.0, "Filter bottle for safe drinking water from streams on hikes."),
    ("p25", "Camping stove", "camping", 54.0, "Compact gas camping stove that boils water in three minutes."),
    ("p26", "Two-person tent", "camping", 219.0, "Light two-person backpacking tent for camping trips."),
    ("p27", "Sleeping bag", "camping", 139.0, "Down sleeping bag rated to minus five for camping in the mountains."),
    ("p28", "Camping mug", "camping", 14.0, "Insulated enamel camping mug; a small gift for outdoor people."),
    ("p29", "Yoga mat", "yoga", 49.0, "Non-slip cork yoga mat for yoga and stretching."),
    ("p30", "Yoga blocks (2)", "yoga", 19.0, "Cork yoga blocks for support in yoga poses."),
    ("p31", "Meditation cushion", "yoga", 39.0, "Buckwheat meditation cushion for calm morning practice."),
    ("p32", "Resistance bands", "fitness", 21.0, "Set of five resistance bands for home workouts and physio."),
    ("p33", "Kettlebell 12kg", "fitness", 45.0, "Cast iron kettlebell for strength training at home."),
    ("p34", "Adjustable dumbbells", "fitness", 229.0, "Pair of adjustable dumbbells from 2 to 24 kg for strength training."),
    ("p35", "Jump rope", "fitness", 12.0, "Speed jump rope for cardio and boxing workouts."),
    ("p36", "Wireless sport earbuds", "electronics", 129.0, "Sweat-proof wireless earbuds that stay in while running or at the gym."),
    ("p37", "Heart-rate chest strap", "electronics", 69.0, "Bluetooth chest strap for accurate heart rate on runs and rides."),
    ("p38", "Action camera", "electronics", 299.0, "Waterproof action camera for cycling, hiking and ski videos."),
    ("p39", "Marathon training book", "books", 22.0, "A twelve-week marathon training plan book for first-time runners; a thoughtful gift."),
    ("p40", "Trail running guidebook", "books", 27.0, "Guide to fifty classic trail running routes in the mountains."),
    ("p41", "Cycling climbs book", "books", 25.0, "The hundred greatest cycling climbs, with maps and profiles."),
    ("p42", "Yoga for athletes book", "books", 19.0, "Yoga routines for runners and cyclists to stay flexible."),
    ("p43", "Insulated water bottle", "accessories", 29.0, "Steel insulated water bottle that keeps drinks cold all day."),
    ("p44", "Sports sunglasses", "accessories", 89.0, "Wraparound sunglasses for running and cycling in bright sun."),
    ("p45", "Gym bag", "accessories", 49.0, "Duffel gym bag with a shoe compartment."),
    ("p46", "Gift card", "gifts", 50.0, "Shop gift card for any runner, cyclist or hiker."),
    ("p47", "Running medal hanger", "gifts", 35.0, "Steel medal display hanger; a gift for a runner with race medals."),
    ("p48", "Massage gun", "fitness", 149.0, "Percussion massage gun for sore legs after running and training."),
]

# What a few shoppers did (in order); fit learns co-occurrence, popularity and the ranker.
SHOPPERS = {
    "maya": ["p01", "p04", "p11", "p40"],            # trail runner
    "leo": ["p02", "p03", "p05", "p39"],             # road runner
    "ines": ["p02", "p06", "p07", "p09", "p11"],     # night runner
    "omar": ["p14", "p15", "p16", "p18"],            # road cyclist
    "kai": ["p19", "p17", "p14", "p41"],             # cyclist
    "rosa": ["p21", "p22", "p23", "p24"],            # hiker
    "tom": ["p26", "p25", "p27", "p28"],             # camper
    "lena": ["p29", "p30", "p31", "p42"],            # yoga
    "sam": ["p33", "p32", "p35", "p13"],             # home gym
    "zoe": ["p01", "p09", "p12", "p44"],             # runner
    "noah": ["p05", "p37", "p36", "p02"],            # runner with gadgets
    "emma": ["p21", "p23", "p28", "p24"],            # hiker
}


def show(pipe: llmrec.Pipeline, recs: list[llmrec.Recommendation]) -> None:
    for rec in recs:
        item = pipe.catalog.get(rec.item_id)
        price, category = item.attributes["price"], item.attributes["categories"][0]
        print(f"  {rec.rank}. {item.title:<28} {category:<12} ${price:>6.2f}  score {rec.score:.3f}")
        if rec.generated is not None:
            print(f"     ({rec.text_source}) {rec.text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-models", action="store_true",
                        help="use the embedded encoder and language model (slower)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = parser.parse_args()
    started = time.perf_counter()

    items = [Item(item_id=i, title=t, text=d, attributes={"categories": [c], "price": p})
             for i, t, c, p, d in PRODUCTS]
    if args.real_models:
        options = dict(encoder="default", llm="default")
    else:
        options = dict(encoder="hashing", encoder_options={"dim": 1024}, llm="template")
    pipe = llmrec.Pipeline.from_catalog(items, device=args.device, models=("ease",),
                                        show_progress=False, **options)
    events = [Event(user_id=user, item_id=item, kind="purchase", timestamp=float(n))
              for user, bought in SHOPPERS.items() for n, item in enumerate(bought)]
    pipe.fit(events, seed=0, show_progress=False)
    print(f"Shop: {len(pipe.catalog)} products, {len(SHOPPERS)} shoppers, {len(events)} "
          f"purchases (encoder={pipe.encoder.backend.name}, llm={options['llm']})")

    print("\nRecommendations for maya (bought trail running gear):")
    show(pipe, pipe.recommend("maya", k=5))

    # A mapping filter keeps items whose attribute equals (or, for a list, contains) one
    # of the values; a callable can test anything, here the price.
    print("\nmaya, categories=running only:")
    show(pipe, pipe.recommend("maya", k=3, filters={"categories": "running"}, generate=False))
    print("\nmaya, price <= $30:")
    show(pipe, pipe.recommend("maya", k=3, generate=False,
                              filters=lambda item: item.attributes["price"] <= 30))

    # Events are folded into the profile at once: the next request sees them.
    pipe.observe(Event(user_id="ava", item_id="p29", kind="view"))
    print("\nA new shopper, ava, views 'Yoga mat':")
    show(pipe, pipe.recommend("ava", k=3, generate=False))
    pipe.observe(Event(user_id="ava", item_id="p21", kind="purchase"))
    print("ava then buys 'Hiking boots':")
    show(pipe, pipe.recommend("ava", k=3, generate=False))

    # A product added while the shop is live is searchable by the next request.
    new = Item(item_id="p49", title="Ultra trail running shoes",
               text="Cushioned trail running shoes for ultra marathons on rough mountain "
                    "trails; a rock plate and grippy lugs.",
               attributes={"categories": ["running"], "price": 159.0})
    pipe.add_items([new])
    recs = pipe.recommend("maya", k=5, filters={"categories": "running"}, generate=False)
    rank = next((r.rank for r in recs if r.item_id == new.item_id), None)
    print(f"\nNew product added live: {new.title!r} "
          + (f"is #{rank} of maya's running picks" if rank else "is not in maya's top 5"))

    # A visitor with no history: the request text alone steers the results.
    pipe.add_user("visitor")
    print("\nQuery 'gift for a runner' from a new visitor, under $60:")
    show(pipe, pipe.recommend("visitor", k=5, query="gift for a runner",
                              filters=lambda item: item.attributes["price"] < 60))
    print(f"\nDone in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
