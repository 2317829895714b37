"""A small outdoor and fitness shop with planted tastes: 40 products in 7 activities and
20 customers who each shop one activity (plus the jackets everyone buys).

The data a new shop brings: few users, few events, text-rich items with a category,
brand, price and description. ``ACTIVITY[item_id]`` tells which activity an item serves,
which is what the cold-start and small-data tests check recommendations against.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from llmrec import Event, Item, Pipeline
from llmrec.evaluation import clean_ranking, evaluate, leave_one_out, rank_metrics
from llmrec.ranking import Ranker

#: (item id, title, activity, category, brand, price, description)
# fmt: off
_PRODUCTS = [
    ("run-trail-shoe", "Ridgeline Trail Running Shoe", "running", "footwear", "Stridepeak",
     129.0, "Trail running shoe with a grippy lugged outsole and a rock plate for technical "
     "singletrack. Light, cushioned and made for runners starting out on trails."),
    ("run-road-shoe", "Tempo Road Running Shoe", "running", "footwear", "Stridepeak", 119.0,
     "Responsive road running shoe with a breathable mesh upper, for daily runs, tempo "
     "workouts and your first race."),
    ("run-shorts", "Split Running Shorts", "running", "apparel", "Pacewear", 39.0,
     "Lightweight running shorts with a built-in liner and a zip pocket for keys on long "
     "runs."),
    ("run-vest", "Hydration Running Vest", "running", "packs", "Pacewear", 89.0,
     "Trail running vest with two soft flasks, carries water and gels on long trail runs "
     "and races."),
    ("run-socks", "Cushioned Running Socks", "running", "apparel", "Pacewear", 15.0,
     "Blister-free running socks with a cushioned sole for road and trail running."),
    ("run-watch", "Pulse GPS Running Watch", "running", "electronics", "Trackwise", 199.0,
     "GPS running watch that tracks pace, distance and heart rate on every run, with "
     "training plans for beginner runners."),
    ("camp-tent", "Summit Two-Person Backpacking Tent", "camping", "shelter", "Basecamp",
     299.0, "Lightweight two-person backpacking tent for camping trips, freestanding, "
     "pitches in minutes, sleeps two with room for packs."),
    ("camp-bag", "Down Sleeping Bag 20F", "camping", "sleep", "Basecamp", 249.0,
     "Lightweight down sleeping bag rated to 20F for overnight camping and backpacking "
     "trips."),
    ("camp-pad", "Inflatable Sleeping Pad", "camping", "sleep", "Basecamp", 119.0,
     "Insulated inflatable sleeping pad for camping; packs small and keeps you warm off the "
     "ground overnight."),
    ("camp-stove", "Canister Backpacking Stove", "camping", "cooking", "Emberline", 59.0,
     "Compact canister stove that boils water in three minutes at camp; lightweight for "
     "backpacking and camping trips."),
    ("camp-cookset", "Titanium Camp Cookset", "camping", "cooking", "Emberline", 69.0,
     "Ultralight titanium pot and mug cookset for cooking at camp on overnight camping "
     "trips."),
    ("camp-headlamp", "Beam Headlamp 400", "camping", "lighting", "Emberline", 39.0,
     "Rechargeable headlamp for the campsite and night hikes, 400 lumens, red night mode."),
    ("camp-lantern", "Glow Camp Lantern", "camping", "lighting", "Emberline", 29.0,
     "Collapsible camp lantern that lights the whole tent and campsite on camping trips."),
    ("hike-boots", "Trailhead Waterproof Hiking Boots", "hiking", "footwear", "Ridgeway",
     179.0, "Waterproof leather hiking boots with ankle support for day hikes and rocky "
     "mountain trails."),
    ("hike-kids-boots", "Kids' Hiking Boots", "hiking", "footwear", "Ridgeway", 79.0,
     "Durable hiking boots for kids on family day hikes, waterproof with easy laces."),
    ("hike-daypack", "Ridge 24L Daypack", "hiking", "packs", "Ridgeway", 99.0,
     "Comfortable 24 litre daypack for day hikes with a hip belt, rain cover and bottle "
     "pockets."),
    ("hike-poles", "Carbon Trekking Poles", "hiking", "accessories", "Ridgeway", 129.0,
     "Adjustable carbon trekking poles that take the load off your knees on steep hiking "
     "descents."),
    ("hike-socks", "Merino Hiking Socks", "hiking", "apparel", "Ridgeway", 22.0,
     "Merino wool hiking socks that stay warm and dry on long hikes."),
    ("hike-filter", "Squeeze Water Filter", "hiking", "accessories", "Clearflow", 39.0,
     "Squeeze water filter for drinking from streams on hikes and treks."),
    ("str-dumbbells", "Adjustable Dumbbells 5-50 lb", "strength", "weights", "Ironform",
     349.0, "Adjustable dumbbells for home strength training, dial from 5 to 50 pounds for "
     "presses, rows and curls."),
    ("str-kettlebell", "Cast Iron Kettlebell 16 kg", "strength", "weights", "Ironform", 69.0,
     "Cast iron kettlebell for swings, squats and full-body strength workouts at home."),
    ("str-bands", "Resistance Bands Set", "strength", "accessories", "Ironform", 29.0,
     "Set of five resistance bands for strength training, mobility and warm-ups at home or "
     "the gym."),
    ("str-bench", "Foldable Weight Bench", "strength", "equipment", "Ironform", 189.0,
     "Adjustable, foldable weight bench for dumbbell presses and home gym strength "
     "workouts."),
    ("str-pullup", "Doorway Pull-Up Bar", "strength", "equipment", "Ironform", 35.0,
     "Doorway pull-up bar for chin-ups and bodyweight strength training at home."),
    ("str-gloves", "Lifting Gloves", "strength", "accessories", "Ironform", 25.0,
     "Padded lifting gloves for a firm grip on dumbbells and kettlebells at the gym."),
    ("yoga-mat", "Grip Yoga Mat 5 mm", "yoga", "mats", "Lotusline", 79.0,
     "Non-slip 5 mm yoga mat with cushioning for yoga, pilates and stretching."),
    ("yoga-blocks", "Cork Yoga Blocks", "yoga", "accessories", "Lotusline", 29.0,
     "A pair of cork yoga blocks for support and alignment in yoga poses."),
    ("yoga-strap", "Yoga Strap", "yoga", "accessories", "Lotusline", 12.0,
     "Cotton yoga strap for deeper stretches and flexibility in yoga practice."),
    ("yoga-roller", "Foam Roller", "yoga", "recovery", "Lotusline", 35.0,
     "Foam roller for recovery, stretching and massage after yoga or workouts."),
    ("yoga-cushion", "Meditation Cushion", "yoga", "accessories", "Lotusline", 49.0,
     "Buckwheat meditation cushion for seated meditation and yoga breathing practice."),
    ("out-down-jacket", "Alpine Down Jacket", "outerwear", "jackets", "Northwind", 229.0,
     "Warm 800-fill down jacket that packs into its own pocket, for cold days in town or "
     "the mountains."),
    ("out-fleece", "Polar Fleece Jacket", "outerwear", "jackets", "Northwind", 89.0,
     "Classic fleece jacket, warm and soft, a mid layer for cool days."),
    ("out-rain-jacket", "Storm Rain Jacket", "outerwear", "jackets", "Northwind", 159.0,
     "Waterproof breathable rain jacket with a hood for wet weather."),
    ("out-base-layer", "Merino Base Layer Top", "outerwear", "apparel", "Northwind", 79.0,
     "Merino wool base layer top that keeps you warm in cold weather."),
    ("out-beanie", "Knit Beanie", "outerwear", "accessories", "Northwind", 25.0,
     "Warm knit beanie for winter."),
    ("out-gloves", "Insulated Winter Gloves", "outerwear", "accessories", "Northwind", 45.0,
     "Insulated waterproof winter gloves for snow and cold."),
    ("bike-helmet", "Aero Bike Helmet", "cycling", "protection", "Spokeline", 99.0,
     "Lightweight vented bike helmet for road cycling and commuting."),
    ("bike-jersey", "Cycling Jersey", "cycling", "apparel", "Spokeline", 69.0,
     "Breathable cycling jersey with rear pockets for long rides on the bike."),
    ("bike-lights", "USB Bike Lights Set", "cycling", "lighting", "Spokeline", 39.0,
     "Rechargeable front and rear bike lights for safe cycling at night."),
    ("bike-repair", "Bike Repair Kit", "cycling", "tools", "Spokeline", 29.0,
     "Bike multitool, tyre levers and patches to fix a flat on the ride."),
]
# fmt: on

#: Item id -> the activity it serves.
ACTIVITY: dict[str, str] = {p[0]: p[2] for p in _PRODUCTS}
#: The activities customers shop (outerwear is what everyone buys besides).
TASTES = ("running", "camping", "hiking", "strength", "yoga", "cycling")
#: How many of the 20 customers shop each activity.
_CUSTOMERS = {"running": 4, "camping": 4, "hiking": 3, "strength": 4, "yoga": 3, "cycling": 2}


def shop_items() -> list[Item]:
    """The 40 products, with ``category``, ``brand``, ``price`` and ``tags``
    (the activity) attributes."""
    return [
        Item(
            item_id,
            title,
            text,
            {"category": category, "brand": brand, "price": price, "tags": [activity]},
        )
        for item_id, title, activity, category, brand, price, text in _PRODUCTS
    ]


def shop_events(seed: int = 0, per_user: int = 10) -> tuple[list[Event], dict[str, str]]:
    """About 200 events of 20 customers ``c00..c19`` and each one's activity.

    Each customer views, clicks and buys items of their activity in a random order; one
    event in four is a jacket or other outerwear (bought by nearly everyone, so popularity
    alone points to jackets).
    """
    rng = random.Random(seed)
    by_activity: dict[str, list[str]] = {}
    for item_id, activity in ACTIVITY.items():
        by_activity.setdefault(activity, []).append(item_id)
    tastes = [taste for taste in TASTES for _ in range(_CUSTOMERS[taste])]
    events, taste_of, t = [], {}, 1_700_000_000.0
    for n, taste in enumerate(tastes):
        user = f"c{n:02d}"
        taste_of[user] = taste
        own = by_activity[taste][:]
        rng.shuffle(own)
        for step in range(per_user):
            if rng.random() < 0.25:
                item_id = rng.choice(by_activity["outerwear"][:3])
            else:
                item_id = own[step % len(own)]
            t += rng.uniform(60.0, 3600.0)
            kind = rng.choice(("view", "click", "click", "purchase"))
            events.append(Event(user, item_id, kind=kind, timestamp=t))
    return events, taste_of


def fusion_ndcg(
    make_pipeline: Callable[[], Pipeline],
    events: Sequence[Event],
    *,
    seed: int = 0,
    per_user: dict[str, list[float]] | None = None,
) -> dict[str, float]:
    """NDCG@10 on the leave-one-out test items of ``events`` for the ranker as fitted
    (``"fitted"``), for the sources' default weights (``"default"``) and for each source
    that has something to say ranking alone (by its name).

    ``make_pipeline`` builds a fresh, unfitted pipeline; every row is fitted on the same
    training events (all as clicks, as the protocol treats them) with the same seed.
    ``per_user``, when given, receives each row's NDCG@10 per test user (in ascending
    user order, the same users for every row), for paired comparisons.
    """
    split = leave_one_out(list(events))
    train = [
        Event(e.user_id, e.item_id, kind="click", timestamp=e.timestamp)
        for e in split.events_for("test")
    ]

    targets = split.targets("test")

    def ndcg(pipe: Pipeline, name: str) -> float:
        result, lists = evaluate(pipe, split, "test", fit=False, show_progress=False)
        if per_user is not None:
            known = frozenset(split.items)  # cleaned as evaluate cleans them
            per_user[name] = [
                rank_metrics(
                    clean_ranking(lists.get(user, ()), split.excluded(user, "test"), known, 10),
                    item,
                    ks=(10,),
                )["ndcg@10"]
                for user, item in targets.items()
            ]
        return float(result["ndcg@10"])

    fitted = make_pipeline().fit(train, seed=seed, show_progress=False)
    out = {"fitted": ndcg(fitted, "fitted")}
    base = make_pipeline().fit(train, seed=seed, train_ranker=False, show_progress=False)
    out["default"] = ndcg(base, "default")
    names = base.ranker.feature_names
    silent = {"query"} | {
        name for name, model in base.retriever.models.items() if not getattr(model, "fitted", True)
    }
    for name in names:
        if name not in silent:
            base.ranker = Ranker(names, weights={name: 1.0})
            out[name] = ndcg(base, name)
    return out
