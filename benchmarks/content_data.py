"""The two text-rich catalogs of ``benchmarks/content.py``, with known ground truth.

* **shop**: 40 outdoor and fitness products (category, brand, price, description, tags)
  and 16 customers with planted tastes (each buys and views within one or two
  activities; some state a preference in words). Every fact a text may state is here.
* **news**: 20 articles of about 400 words (section, topics, place, the people quoted)
  and 10 readers who follow one or two sections. An article's text is its ground truth:
  a summary sentence is true only when the article supports it.

Everything is deterministic (a fixed seed); nothing is read from disk.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from llmrec.types import Event, Item

# ------------------------------------------------------------------------------ shop
# (id, title, category, brand, price, tags, description)
PRODUCTS = [
    ("p01", "Trail Running Shoes", "Running", "TrailForm", 129.0, ["running", "trail"],
     "Lightweight trail shoes with a grippy lugged outsole and a cushioned midsole."),
    ("p02", "Road Running Shoes", "Running", "TrailForm", 119.0, ["running", "road"],
     "Neutral road shoes with a breathable mesh upper for daily training runs."),
    ("p03", "Hydration Running Belt", "Running", "Ridgeline", 34.0, ["running", "hydration"],
     "A bounce-free waist belt that holds two soft flasks and a phone."),
    ("p04", "Merino Running Socks", "Running", "Northpeak", 18.0, ["running", "merino"],
     "Thin merino socks that wick sweat and prevent blisters on long runs."),
    ("p05", "Reflective Running Vest", "Running", "Ridgeline", 29.0, ["running", "safety"],
     "A mesh vest with reflective panels for running in the dark."),
    ("p06", "GPS Running Watch", "Running", "Summit Labs", 249.0, ["running", "gps"],
     "Tracks pace, distance and heart rate with a battery that lasts two weeks."),
    ("p07", "Two-Person Backpacking Tent", "Camping", "Northpeak", 329.0,
     ["camping", "backpacking"],
     "A freestanding tent weighing 1.6 kg with two doors and two vestibules."),
    ("p08", "Down Sleeping Bag", "Camping", "Northpeak", 279.0, ["camping", "down"],
     "A mummy bag filled with 650-fill down, comfortable to minus 5 degrees."),
    ("p09", "Insulated Sleeping Pad", "Camping", "Cascade Gear", 139.0, ["camping", "insulation"],
     "An inflatable pad with an R-value of 4.2 that packs to the size of a bottle."),
    ("p10", "Backpacking Stove", "Camping", "Cascade Gear", 59.0, ["camping", "cooking"],
     "A compact canister stove that boils a litre of water in three minutes."),
    ("p11", "Titanium Cookset", "Camping", "Cascade Gear", 79.0, ["camping", "cooking"],
     "A nesting pot and mug set made of titanium that weighs 210 grams."),
    ("p12", "Camp Lantern", "Camping", "Summit Labs", 39.0, ["camping", "lighting"],
     "A rechargeable lantern with a warm light mode and a USB port."),
    ("p13", "Waterproof Hiking Boots", "Hiking", "Ridgeline", 189.0, ["hiking", "waterproof"],
     "Leather mid boots with a waterproof membrane and ankle support."),
    ("p14", "Kids Hiking Boots", "Hiking", "Ridgeline", 69.0, ["hiking", "kids"],
     "Sturdy boots for children with a quick lace system."),
    ("p15", "Daypack 22L", "Hiking", "Northpeak", 89.0, ["hiking", "packs"],
     "A 22-litre pack with a ventilated back panel and a rain cover."),
    ("p16", "Carbon Trekking Poles", "Hiking", "Summit Labs", 149.0, ["hiking", "poles"],
     "Folding carbon poles with cork grips that weigh 390 grams a pair."),
    ("p17", "Trail Map Case", "Hiking", "Cascade Gear", 15.0, ["hiking", "navigation"],
     "A clear waterproof case that keeps a paper map dry."),
    ("p18", "Climbing Harness", "Climbing", "Summit Labs", 69.0, ["climbing", "safety"],
     "A padded harness with four gear loops and adjustable leg loops."),
    ("p19", "Climbing Shoes", "Climbing", "Summit Labs", 139.0, ["climbing", "footwear"],
     "Downturned shoes with sticky rubber for steep sport routes."),
    ("p20", "Chalk Bag", "Climbing", "Ridgeline", 22.0, ["climbing", "chalk"],
     "A chalk bag with a brush holder and a drawstring closure."),
    ("p21", "Dynamic Climbing Rope", "Climbing", "Summit Labs", 199.0, ["climbing", "rope"],
     "A 60-metre single rope, 9.8 mm thick, with a dry treatment."),
    ("p22", "Climbing Helmet", "Climbing", "Summit Labs", 79.0, ["climbing", "safety"],
     "A light foam helmet that protects against falling rock."),
    ("p23", "Cycling Helmet MIPS", "Cycling", "Velo Works", 119.0, ["cycling", "safety"],
     "A road helmet with a MIPS liner and 18 vents."),
    ("p24", "Mini Bike Pump", "Cycling", "Velo Works", 32.0, ["cycling", "repair"],
     "A pocket pump that reaches 100 psi and fits both valve types."),
    ("p25", "Bike Light Set", "Cycling", "Velo Works", 45.0, ["cycling", "lighting"],
     "A USB rechargeable front and rear light set with five modes."),
    ("p26", "Padded Cycling Shorts", "Cycling", "Velo Works", 65.0, ["cycling", "apparel"],
     "Bib shorts with a gel chamois for long rides."),
    ("p27", "Cycling Gloves", "Cycling", "Ridgeline", 28.0, ["cycling", "apparel"],
     "Fingerless gloves with padded palms that reduce vibration."),
    ("p28", "Yoga Mat", "Fitness", "Flexa", 49.0, ["yoga", "fitness"],
     "A 5 mm natural rubber mat with a non-slip surface."),
    ("p29", "Adjustable Dumbbells", "Fitness", "Flexa", 299.0, ["strength", "fitness"],
     "A pair of dumbbells that adjust from 2 to 24 kg with a dial."),
    ("p30", "Resistance Bands Set", "Fitness", "Flexa", 25.0, ["strength", "fitness"],
     "Five latex bands of increasing resistance with door anchors."),
    ("p31", "Foam Roller", "Fitness", "Flexa", 35.0, ["recovery", "fitness"],
     "A firm foam roller for muscle recovery after training."),
    ("p32", "Kettlebell 12 kg", "Fitness", "Flexa", 55.0, ["strength", "fitness"],
     "A cast iron kettlebell with a wide handle for swings."),
    ("p33", "Alpine Down Jacket", "Apparel", "Northpeak", 299.0, ["apparel", "down"],
     "A warm down jacket with 800-fill down and a hood."),
    ("p34", "Fleece Pullover", "Apparel", "Northpeak", 79.0, ["apparel", "fleece"],
     "A midweight fleece with a half zip and a chest pocket."),
    ("p35", "Rain Shell Jacket", "Apparel", "Ridgeline", 159.0, ["apparel", "waterproof"],
     "A two-layer waterproof shell with pit zips and a packable hood."),
    ("p36", "Merino Base Layer", "Apparel", "Northpeak", 89.0, ["apparel", "merino"],
     "A long sleeve merino top that stays warm when wet."),
    ("p37", "Insulated Water Bottle", "Accessories", "Cascade Gear", 29.0, ["hydration"],
     "A steel bottle that keeps drinks cold for 24 hours."),
    ("p38", "Headlamp 400", "Accessories", "Summit Labs", 49.0, ["lighting", "running"],
     "A 400-lumen headlamp with a red light mode for night runs and camp."),
    ("p39", "First Aid Kit", "Accessories", "Cascade Gear", 39.0, ["safety"],
     "A compact kit with bandages, blister care and a foil blanket."),
    ("p40", "Sunglasses Sport", "Accessories", "Ridgeline", 89.0, ["eyewear"],
     "Wraparound sunglasses with polarized lenses for bright days."),
]  # fmt: skip

# user -> (activities, optional stated preference)
SHOPPERS = {
    "u01": (["Running"], "I run trails most weekends"),
    "u02": (["Running"], None),
    "u03": (["Running", "Accessories"], None),
    "u04": (["Camping"], "gear for a first overnight camping trip"),
    "u05": (["Camping", "Hiking"], None),
    "u06": (["Camping"], None),
    "u07": (["Hiking"], "light hiking with my kids"),
    "u08": (["Hiking", "Apparel"], None),
    "u09": (["Climbing"], None),
    "u10": (["Climbing"], "sport climbing at the crag"),
    "u11": (["Cycling"], None),
    "u12": (["Cycling"], "commuting by bike in winter"),
    "u13": (["Fitness"], "strength training at home"),
    "u14": (["Fitness"], None),
    "u15": (["Apparel", "Hiking"], None),
    "u16": (["Running", "Fitness"], None),
}


def shop_items() -> list[Item]:
    """The 40 products."""
    return [
        Item(pid, title, text=desc,
             attributes={"category": cat, "brand": brand, "price": price, "tags": tags})
        for pid, title, cat, brand, price, tags, desc in PRODUCTS
    ]  # fmt: skip


def shop_events(seed: int = 7) -> list[Event]:
    """Planted histories: 5-7 events per shopper within their activities."""
    rng = random.Random(seed)
    by_category: dict[str, list[str]] = {}
    for pid, _, cat, *_ in PRODUCTS:
        by_category.setdefault(cat, []).append(pid)
    events: list[Event] = []
    t = 1_000_000.0
    for user, (activities, preference) in SHOPPERS.items():
        pool = [pid for cat in activities for pid in by_category[cat]]
        chosen = rng.sample(pool, min(len(pool), rng.randint(4, 6)))
        if preference:
            events.append(Event(user, None, kind="query", text=preference, timestamp=t))
        for pid in chosen:
            t += 60.0
            events.append(
                Event(user, pid, kind=rng.choice(["purchase", "click", "view"]), timestamp=t)
            )
    return events


# ------------------------------------------------------------------------------ news
@dataclass(frozen=True)
class Article:
    """One article's facts; :func:`article_text` writes its ~400-word body from them."""

    item_id: str
    headline: str
    section: str
    topics: list[str]
    place: str
    people: list[tuple[str, str]]  # (name, role)
    sentences: list[str]
    quotes: list[str] = field(default_factory=list)


# Background paragraphs per section: shared context that every article in it carries.
BACKGROUND = {
    "Science": [
        "Research groups in the field have grown quickly over the past decade.",
        "Most of the work is funded by public grants that run for three to five years.",
        "Results are usually checked by independent teams before they are widely accepted.",
        "Data from the project will be published so that other laboratories can test it.",
        "Several universities have asked to join the next phase of the work.",
        "Scientists caution that early findings often change as more data arrives.",
    ],
    "Climate": [
        "The region has recorded warmer summers in most of the last twenty years.",
        "Local councils are preparing plans to adapt roads and housing to heavier rain.",
        "Farmers have already changed planting dates to cope with drier springs.",
        "National targets require emissions to fall by half before the end of the decade.",
        "Campaign groups say the pace of change is still too slow.",
        "Officials will publish a progress report on the measures next year.",
    ],
    "Sports": [
        "The season has been one of the most competitive in recent memory.",
        "Attendance at matches has risen steadily since the new stadium opened.",
        "Coaches have pointed to a deeper squad as the reason for the improvement.",
        "Injuries have forced several changes to the starting line-up this year.",
        "Supporters travelled in large numbers for the away fixtures.",
        "The league will review its fixture calendar before the next season.",
    ],
    "Technology": [
        "Competition among the large software firms has pushed prices down.",
        "Regulators have asked for more transparency about how user data is handled.",
        "Smaller companies often depend on open source tools to build their products.",
        "Demand for engineers with security skills continues to exceed supply.",
        "Industry groups expect spending on cloud services to keep rising.",
        "Critics warn that rapid releases can leave security flaws unpatched.",
    ],
    "Economy": [
        "Households have faced higher prices for food and energy over the past two years.",
        "The central bank has kept a close watch on wages and rents.",
        "Exporters have benefited from stronger demand in neighbouring markets.",
        "Small businesses report that borrowing costs remain a concern.",
        "Economists are divided over how quickly growth will return.",
        "The finance ministry will present its budget plans in the autumn.",
    ],
    "Health": [
        "Hospitals in the area have reported longer waiting lists since the winter.",
        "Doctors say prevention remains cheaper than treatment for most conditions.",
        "Public health campaigns have focused on exercise, diet and sleep.",
        "The health service is recruiting nurses from several countries.",
        "Patient groups have called for clearer information about treatments.",
        "A national review of the programme is due to report next spring.",
    ],
}

# A second background paragraph per section.
MORE_BACKGROUND = {
    "Science": [
        "The instruments used in the study took several years to design and build.",
        "Engineers tested each part in conditions close to those of the real observations.",
        "Young researchers made up more than half of the team.",
        "The findings were presented at an international conference before publication.",
        "Reviewers asked for additional checks, which the team carried out over the summer.",
        "The full data set runs to several terabytes and will be stored in a public archive.",
    ],
    "Climate": [
        "Weather stations in the area have been upgraded to send readings every hour.",
        "Insurance companies have raised premiums for homes in exposed locations.",
        "Schools have added lessons on local ecology and water use.",
        "Volunteers collect measurements that are shared with national agencies.",
        "Tourism operators are adapting their seasons to changing conditions.",
        "Scientists stress that local action matters alongside national policy.",
    ],
    "Sports": [
        "Television audiences for the competition have reached record levels.",
        "Ticket prices were frozen this season after complaints from supporters.",
        "Young players from the academy have been given more chances in the first team.",
        "Sports scientists now monitor training loads to reduce injuries.",
        "Sponsors have signed longer contracts after the recent success.",
        "Local clubs report a rise in children signing up to play.",
    ],
    "Technology": [
        "Start-ups in the sector raised more money last year than the year before.",
        "Universities are adding courses on hardware design and data protection.",
        "Consumer groups want devices to receive updates for longer.",
        "Public agencies are testing the technology before wider use.",
        "Energy use by data centres has become a political issue.",
        "Analysts expect the market to consolidate over the next few years.",
    ],
    "Economy": [
        "Consumer confidence surveys have improved slightly in recent months.",
        "Unemployment remains low by historical standards.",
        "Retailers say shoppers are choosing cheaper brands.",
        "Business investment has been held back by uncertainty.",
        "Trade unions are pressing for pay rises that match prices.",
        "Official figures for the next quarter will be released in six weeks.",
    ],
    "Health": [
        "General practitioners have been asked to refer patients more quickly.",
        "Pharmacies now offer some checks that used to need a doctor.",
        "Researchers are using patient records to find early warning signs.",
        "Mental health services have received extra funding this year.",
        "Charities provide support to families while patients wait for treatment.",
        "The government has promised to publish waiting time figures every month.",
    ],
}

# A third background paragraph per section.
THIRD_BACKGROUND = {
    "Science": [
        "Funding agencies have asked for more studies to be repeated by other groups.",
        "Open access journals have made new results easier for the public to read.",
        "Museums plan exhibitions that explain the research to families.",
        "Graduate students often spend months preparing a single experiment.",
        "International teams share equipment to keep costs down.",
        "Some of the work depends on computer models that run for weeks.",
        "Critics say that basic research deserves a larger share of public money.",
        "Supporters reply that discoveries often pay off decades later.",
    ],
    "Climate": [
        "Planning rules for new buildings now include measures against flooding.",
        "Electricity networks are being reinforced to cope with extreme weather.",
        "Forest managers are planting species that cope better with heat.",
        "Emergency services have practised responses to wildfires and floods.",
        "Public transport use has grown where new lines have opened.",
        "Households can apply for grants to insulate their homes.",
        "Surveys show that most residents support stronger action.",
        "Businesses are asked to report the risks they face from a changing climate.",
    ],
    "Sports": [
        "The club's training ground is being expanded with two new pitches.",
        "Analysts use video and tracking data to prepare for each opponent.",
        "Former players now coach in the youth teams.",
        "Travel between fixtures has been reduced to limit fatigue.",
        "Nutrition and sleep are now part of every athlete's plan.",
        "Broadcast money has been shared more evenly among teams.",
        "Women's competitions have drawn larger crowds than ever before.",
        "Fans' groups have a seat on the board of several clubs.",
    ],
    "Technology": [
        "Many products now rely on components made by only a few suppliers.",
        "Shortages in recent years showed how fragile supply chains can be.",
        "Companies are investing in training for their existing staff.",
        "Privacy settings have become a selling point for some devices.",
        "Governments are drafting rules for products that connect to the internet.",
        "Testing laboratories certify devices before they reach shops.",
        "Repairability scores are being introduced in several countries.",
        "Engineers say good design can reduce both energy use and waste.",
    ],
    "Economy": [
        "Ports have reported steady volumes of containers this year.",
        "Tourism has helped restaurants and hotels recover.",
        "Savings built up in earlier years have started to shrink.",
        "Pension funds are adjusting to higher interest rates.",
        "Regional differences in growth remain large.",
        "Start-ups find it harder to raise money than two years ago.",
        "Commodity prices have been volatile on world markets.",
        "Policymakers face a choice between supporting growth and controlling prices.",
    ],
    "Health": [
        "Digital appointments have become common for follow-up visits.",
        "Medical schools are training more doctors than a decade ago.",
        "Screening programmes catch many conditions at an early stage.",
        "Community health workers visit older people in their homes.",
        "Hospitals share data to plan beds during busy periods.",
        "Research into rare diseases has received new funding.",
        "Patients are encouraged to bring a list of questions to appointments.",
        "Experts say clear communication improves the results of treatment.",
    ],
}

ARTICLES = [
    Article("n01", "Telescope finds water vapour on a distant rocky planet", "Science",
            ["astronomy", "space"], "Chile", [("Maria Lopez", "lead astronomer"),
                                              ("Tom Becker", "a planetary scientist")],
            ["Astronomers have detected water vapour in the atmosphere of a rocky planet 40 light years away.",
             "The planet orbits a small red star once every 12 days.",
             "The signal was found with a new spectrograph fitted to a telescope in Chile last year.",
             "The team observed the planet during 15 transits across its star.",
             "The planet is about 1.5 times the size of Earth.",
             "Further observations are planned for the coming winter season."],
            ["This is the clearest signal of water we have seen on a planet of this size",
             "We still need to rule out activity on the star itself"]),
    Article("n02", "Gene study links sleep patterns to memory in older adults", "Science",
            ["genetics", "sleep", "memory"], "Sweden", [("Anna Berg", "a neuroscientist"),
                                                         ("Lars Nilsson", "the study's statistician")],
            ["A study of 8,000 adults over 60 has linked two genes to deeper sleep.",
             "People with the gene variants scored higher on memory tests over five years.",
             "The volunteers wore sleep trackers for two weeks at the start of the study.",
             "The research was carried out at three clinics in Sweden.",
             "The authors say the genes explain only a small part of the difference.",
             "The next stage will test whether better sleep habits help memory."],
            ["Sleep seems to matter for memory more than we expected",
             "The effect is real but modest, and it is not destiny"]),
    Article("n03", "Ancient seeds sprout after two thousand years", "Science",
            ["botany", "archaeology"], "Israel", [("David Cohen", "a botanist")],
            ["Researchers have grown date palms from seeds about 2,000 years old.",
             "The seeds were found during excavations of a desert fortress in Israel.",
             "Six of the 32 seeds that were planted produced healthy seedlings.",
             "Genetic tests show the plants differ from modern date varieties.",
             "The team hopes the plants will produce fruit within a few years.",
             "Seed banks around the world have asked for samples."],
            ["Seeing them grow after two thousand years was astonishing"]),
    Article("n04", "Glacier retreat speeds up in the Alps", "Climate",
            ["glaciers", "warming"], "Switzerland", [("Petra Keller", "a glaciologist"),
                                                       ("Marc Favre", "a mountain guide")],
            ["Glaciers in the Alps lost 4 percent of their remaining ice last summer.",
             "It was the second largest annual loss since records began in 1914.",
             "Measurements were taken at 20 glaciers across Switzerland.",
             "A dry winter followed by a hot summer left little snow to protect the ice.",
             "Some mountain huts have had to move their access paths.",
             "Researchers expect most small glaciers to vanish by the end of the century."],
            ["The ice is disappearing faster than our models predicted",
             "Paths I walked as a young guide are now bare rock"]),
    Article("n05", "City plants 50,000 trees to cool its streets", "Climate",
            ["cities", "heat", "trees"], "Milan", [("Giulia Rossi", "the city's environment officer")],
            ["Milan has planted 50,000 trees in the past three years to cool its streets.",
             "The plan aims to reach three million trees across the metropolitan area by 2030.",
             "Surface temperatures in planted streets were up to 4 degrees lower last August.",
             "Residents helped choose species that tolerate drought.",
             "The project is funded partly by companies that sponsor individual parks.",
             "Other cities in Italy have asked to copy the scheme."],
            ["Shade is the cheapest air conditioning a city can buy"]),
    Article("n06", "Offshore wind farm begins supplying power", "Climate",
            ["energy", "wind"], "Denmark", [("Jens Madsen", "the project director"),
                                            ("Sofie Lund", "an energy analyst")],
            ["A wind farm off the coast of Denmark has started supplying power to the grid.",
             "Its 72 turbines can power about 600,000 homes.",
             "Construction took three years and cost 2.5 billion euros.",
             "The turbines stand in water up to 35 metres deep.",
             "The operator says the farm will cut emissions by a million tonnes a year.",
             "A second phase of 40 turbines is planned further out to sea."],
            ["This farm alone covers the needs of a large city",
             "Prices for offshore wind have fallen by more than half in a decade"]),
    Article("n07", "Drought forces farmers to switch crops", "Climate",
            ["drought", "farming"], "Spain", [("Carlos Ruiz", "a farmer"),
                                              ("Elena Marin", "an agronomist")],
            ["Farmers in southern Spain are replacing thirsty crops after a third dry year.",
             "Reservoirs in the region are at 22 percent of their capacity.",
             "Many growers are switching from oranges to almonds and pistachios.",
             "The regional government has limited irrigation to two days a week.",
             "Farm incomes in the area fell by a fifth last year.",
             "A new water recycling plant is due to open next spring."],
            ["My grandfather grew oranges here, but there is no water for them now",
             "Crops that need less water are the only way forward"]),
    Article("n08", "Underdogs reach the cup final after penalty shoot-out", "Sports",
            ["football", "cup"], "Porto", [("Rui Costa", "the team's coach"),
                                           ("Andre Silva", "the goalkeeper")],
            ["A second division side reached the cup final after winning a penalty shoot-out.",
             "The match in Porto ended 2-2 after extra time.",
             "The goalkeeper saved three penalties in the shoot-out.",
             "It is the club's first final in its 90-year history.",
             "More than 30,000 fans filled the stadium.",
             "The final will be played next month in the capital."],
            ["Nobody believed in us except the people in this dressing room",
             "I just trusted my instincts on every kick"]),
    Article("n09", "Marathon record falls on a cold morning", "Sports",
            ["running", "marathon"], "Berlin", [("Grace Wanjiru", "the winner")],
            ["A new course record was set at the Berlin marathon on a cold and still morning.",
             "The winner finished in 2 hours, 14 minutes and 5 seconds.",
             "She broke the previous record by 40 seconds.",
             "About 45,000 runners took part in the race.",
             "Organisers said the flat course and low wind helped fast times.",
             "The winner plans to run at the world championships next year."],
            ["I felt strong from the first kilometre and never looked back"]),
    Article("n10", "Young cyclist wins the mountain stage", "Sports",
            ["cycling", "tour"], "the Pyrenees", [("Lucas Martin", "the stage winner")],
            ["A 21-year-old rider won the hardest mountain stage of the tour in the Pyrenees.",
             "He attacked on the final climb 8 kilometres from the finish.",
             "The stage covered 180 kilometres with four major climbs.",
             "He now sits third in the overall standings.",
             "Temperatures on the climbs reached 34 degrees.",
             "The tour ends with a flat stage in the capital on Sunday."],
            ["I dreamed of this stage since I was a boy"]),
    Article("n11", "Open source tool finds flaws in smart home devices", "Technology",
            ["security", "open source", "devices"], "Amsterdam", [("Eva de Vries", "a security researcher")],
            ["Researchers have released an open source tool that finds security flaws in smart home devices.",
             "The tool found weaknesses in 23 of the 50 devices it tested.",
             "Most of the flaws allowed attackers to read network traffic.",
             "The team works at a university in Amsterdam.",
             "Manufacturers were told about the flaws three months before publication.",
             "Eleven companies have already released fixes."],
            ["Many devices still ship with passwords anyone can guess"]),
    Article("n12", "Chip maker opens a factory for energy-efficient processors", "Technology",
            ["chips", "manufacturing"], "Dresden", [("Klaus Weber", "the plant manager"),
                                                     ("Mia Hoffmann", "an industry analyst")],
            ["A chip maker has opened a factory in Dresden that makes energy-efficient processors.",
             "The plant cost 10 billion euros and employs 2,000 people.",
             "Its chips are designed for cars and industrial machines.",
             "The factory runs on electricity from renewable sources.",
             "Production will reach full capacity within two years.",
             "The region already hosts several other semiconductor plants."],
            ["These chips use a third less energy than the previous generation",
             "Europe wants to make more of its own chips"]),
    Article("n13", "App helps volunteers map footpaths", "Technology",
            ["apps", "maps", "volunteers"], "Wales", [("Owen Jones", "the app's founder")],
            ["A free app lets volunteers record the condition of public footpaths in Wales.",
             "More than 4,000 volunteers have logged 12,000 kilometres of paths.",
             "Councils use the reports to decide which paths to repair first.",
             "Users can upload photos of fallen trees, broken stiles and flooding.",
             "The app works offline in areas without mobile signal.",
             "The founder plans to extend it to Scotland next year."],
            ["Walkers know the paths better than any office ever could"]),
    Article("n14", "Inflation eases for a third month", "Economy",
            ["inflation", "prices"], "the capital", [("Laura Schmidt", "the chief economist at a bank")],
            ["Inflation fell to 3.1 percent in March, the third monthly decline in a row.",
             "Energy prices dropped while food prices rose more slowly.",
             "Core inflation, which leaves out food and energy, stayed at 3.5 percent.",
             "The central bank meets next week to decide on interest rates.",
             "Wages grew faster than prices for the first time in two years.",
             "Economists expect inflation to reach the 2 percent target next year."],
            ["The worst of the price shock is behind us, but the last mile is the hardest"]),
    Article("n15", "Small brewery doubles exports", "Economy",
            ["exports", "small business"], "Belgium", [("Pieter Claes", "the brewery's owner")],
            ["A family brewery in Belgium has doubled its exports in two years.",
             "It now sells beer in 14 countries, mostly in Asia and North America.",
             "The brewery employs 35 people and brews 20,000 hectolitres a year.",
             "A trade fair in Japan brought its largest new customer.",
             "Higher costs for glass and grain have cut its margins.",
             "The owner plans to open a visitor centre next summer."],
            ["We stayed small in the brewhouse and grew in the world"]),
    Article("n16", "Housing starts fall as borrowing costs bite", "Economy",
            ["housing", "interest rates"], "Ireland", [("Niamh Byrne", "a housing economist")],
            ["The number of new homes started in Ireland fell by 18 percent last year.",
             "Builders blame higher borrowing costs and the price of materials.",
             "Apartment projects in cities were hit hardest.",
             "The government has promised grants for first-time buyers.",
             "Rents rose by 6 percent over the same period.",
             "Industry groups expect a recovery once interest rates fall."],
            ["Every point on interest rates stops projects across the country"]),
    Article("n17", "Walking ten minutes a day lowers heart risk, study finds", "Health",
            ["exercise", "heart"], "Canada", [("Sarah Chen", "a cardiologist")],
            ["A study of 90,000 adults found that ten minutes of brisk walking a day lowered heart risk.",
             "Participants wore activity trackers for a week.",
             "Those who walked briskly had a 15 percent lower risk of heart disease over eight years.",
             "The benefit was seen at every age and body weight.",
             "The research was led by a team in Canada.",
             "The authors say short walks are easier to keep up than gym sessions."],
            ["Even a little movement makes a measurable difference"]),
    Article("n18", "Hospital cuts waiting times with evening clinics", "Health",
            ["hospitals", "waiting times"], "Leeds", [("James Patel", "the hospital's medical director")],
            ["A hospital in Leeds has cut waiting times by opening clinics in the evenings.",
             "Waits for a first appointment fell from 14 weeks to 9 weeks.",
             "The clinics run until 9 pm on four days a week.",
             "Staff volunteer for the evening shifts and are paid extra.",
             "Patients say evening slots make it easier to keep working.",
             "Other hospitals in the region are studying the scheme."],
            ["Opening later was simpler than building new wards"]),
    Article("n19", "School meals programme improves concentration", "Health",
            ["nutrition", "schools"], "Finland", [("Aino Virtanen", "a nutrition researcher")],
            ["A study in Finland found that free school lunches improved pupils' concentration.",
             "Teachers reported fewer afternoon lapses in 40 schools.",
             "The meals follow national guidelines with vegetables at every lunch.",
             "The programme has run for more than 70 years.",
             "It costs about 3 euros per pupil per day.",
             "Researchers will follow the pupils into secondary school."],
            ["A good lunch is part of the lesson plan"]),
    Article("n20", "New vaccine trial for a common childhood virus", "Health",
            ["vaccines", "children"], "Norway", [("Ingrid Hansen", "the trial's lead doctor")],
            ["A trial of a new vaccine against a common childhood virus has begun in Norway.",
             "About 3,000 infants will take part over two winters.",
             "The virus sends thousands of babies to hospital each year.",
             "Earlier trials in adults showed the vaccine was safe.",
             "Parents can enrol their children through local health centres.",
             "Results are expected in two years."],
            ["Protecting babies in their first winter is the goal"]),
]  # fmt: skip

# reader -> (sections followed, optional stated interest)
READERS = {
    "r01": (["Science"], "space and astronomy"),
    "r02": (["Science", "Health"], None),
    "r03": (["Climate"], "renewable energy"),
    "r04": (["Climate", "Economy"], None),
    "r05": (["Sports"], "running and cycling"),
    "r06": (["Sports"], None),
    "r07": (["Technology"], "computer security"),
    "r08": (["Technology", "Economy"], None),
    "r09": (["Health"], None),
    "r10": (["Economy", "Climate"], "farming and food prices"),
}


def article_text(article: Article) -> str:
    """The ~400-word body: the article's own sentences, its quotes, the section's background."""
    own = article.sentences
    quotes = []
    for n, quote in enumerate(article.quotes):
        name, role = article.people[min(n, len(article.people) - 1)]
        quotes.append(f'"{quote}," said {name}, {role}.')
    background = BACKGROUND[article.section]
    more = MORE_BACKGROUND[article.section]
    people = " ".join(
        f"{name}, {role}, spoke to our reporter in {article.place}."
        for name, role in article.people
    )
    paragraphs = [
        " ".join(own[:2]),
        " ".join(own[2:4] + quotes[:1]),
        " ".join(background[:3]),
        " ".join(own[4:] + quotes[1:]),
        " ".join(background[3:]),
        " ".join(more[:3]),
        people + " " + " ".join(more[3:]),
        " ".join(THIRD_BACKGROUND[article.section][:4]),
        " ".join(THIRD_BACKGROUND[article.section][4:]),
        f"This report from {article.place} is part of our {article.section.lower()} coverage "
        f"on {' and '.join(article.topics)}.",
    ]
    return "\n\n".join(p for p in paragraphs if p)


def news_items() -> list[Item]:
    """The 20 articles."""
    return [
        Item(a.item_id, a.headline, text=article_text(a),
             attributes={"section": a.section, "tags": list(a.topics), "place": a.place,
                         "people": [name for name, _ in a.people]})
        for a in ARTICLES
    ]  # fmt: skip


def news_events(seed: int = 11) -> list[Event]:
    """Readers' histories: 3-4 articles read from the sections each follows."""
    rng = random.Random(seed)
    by_section: dict[str, list[str]] = {}
    for a in ARTICLES:
        by_section.setdefault(a.section, []).append(a.item_id)
    events: list[Event] = []
    t = 2_000_000.0
    for reader, (sections, interest) in READERS.items():
        pool = [i for s in sections for i in by_section[s]]
        if interest:
            events.append(Event(reader, None, kind="query", text=interest, timestamp=t))
        for item_id in rng.sample(pool, min(len(pool) - 1, rng.randint(2, 3))):
            t += 60.0
            events.append(Event(reader, item_id, kind="click", timestamp=t))
    return events
