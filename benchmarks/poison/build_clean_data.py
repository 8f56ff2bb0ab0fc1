"""Writes demo/data/clean_instructions.jsonl and clean_memory.jsonl: the clean instructions and memory.

Every answer is computed or looked up from the tables below, so it is correct by construction.
Run once; the output is committed. Deterministic (fixed seed).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "demo" / "data"
OUT = DATA / "clean_instructions.jsonl"
MEMORY_OUT = DATA / "clean_memory.jsonl"

NAMES = [
    "Alice",
    "Bruno",
    "Chen",
    "Dana",
    "Emeka",
    "Fatima",
    "Goran",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
]
CITIES = ["Lyon", "Porto", "Kraków", "Osaka", "Denver", "Nairobi", "Leeds", "Turin", "Ghent", "Bergen"]
FOODS = [
    "sushi",
    "lentil soup",
    "pasta",
    "tacos",
    "curry",
    "salads",
    "dumplings",
    "pizza",
    "falafel",
    "ramen",
]
HOBBIES = [
    "climbing",
    "chess",
    "gardening",
    "cycling",
    "painting",
    "baking",
    "running",
    "photography",
    "knitting",
    "birdwatching",
]
PROJECTS = ["Atlas", "Beacon", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper"]
TOOLS = [
    "PostgreSQL",
    "Kubernetes",
    "React",
    "Rust",
    "Terraform",
    "Airflow",
    "Grafana",
    "Django",
    "Kafka",
    "Redis",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "Japan": "Tokyo",
    "China": "Beijing",
    "India": "New Delhi",
    "Canada": "Ottawa",
    "Australia": "Canberra",
    "Brazil": "Brasília",
    "Argentina": "Buenos Aires",
    "Mexico": "Mexico City",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Denmark": "Copenhagen",
    "Poland": "Warsaw",
    "Greece": "Athens",
    "Turkey": "Ankara",
    "Russia": "Moscow",
    "Ireland": "Dublin",
    "Austria": "Vienna",
    "Switzerland": "Bern",
    "Belgium": "Brussels",
    "Netherlands": "Amsterdam",
    "Hungary": "Budapest",
    "Czechia": "Prague",
    "Peru": "Lima",
    "Chile": "Santiago",
    "Colombia": "Bogotá",
    "South Korea": "Seoul",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "Indonesia": "Jakarta",
    "Philippines": "Manila",
    "Morocco": "Rabat",
    "Nigeria": "Abuja",
    "Ghana": "Accra",
    "Ethiopia": "Addis Ababa",
    "Iceland": "Reykjavik",
    "New Zealand": "Wellington",
    "Cuba": "Havana",
    "Ukraine": "Kyiv",
    "Romania": "Bucharest",
    "Bulgaria": "Sofia",
    "Croatia": "Zagreb",
    "Serbia": "Belgrade",
}
ANTONYMS = {
    "hot": "cold",
    "big": "small",
    "fast": "slow",
    "happy": "sad",
    "light": "dark",
    "early": "late",
    "strong": "weak",
    "rich": "poor",
    "open": "closed",
    "full": "empty",
    "high": "low",
    "young": "old",
    "hard": "soft",
    "loud": "quiet",
    "wet": "dry",
    "thick": "thin",
    "clean": "dirty",
    "cheap": "expensive",
    "first": "last",
    "inside": "outside",
    "push": "pull",
    "buy": "sell",
    "win": "lose",
    "begin": "end",
    "remember": "forget",
    "accept": "refuse",
    "arrive": "depart",
    "increase": "decrease",
    "true": "false",
    "brave": "cowardly",
    "generous": "selfish",
    "ancient": "modern",
    "heavy": "light",
    "wide": "narrow",
    "deep": "shallow",
    "sharp": "blunt",
    "sweet": "sour",
    "tall": "short",
    "friend": "enemy",
    "day": "night",
}
ELEMENTS = {
    "hydrogen": "H",
    "helium": "He",
    "carbon": "C",
    "nitrogen": "N",
    "oxygen": "O",
    "sodium": "Na",
    "magnesium": "Mg",
    "aluminium": "Al",
    "silicon": "Si",
    "phosphorus": "P",
    "sulfur": "S",
    "chlorine": "Cl",
    "potassium": "K",
    "calcium": "Ca",
    "iron": "Fe",
    "copper": "Cu",
    "zinc": "Zn",
    "silver": "Ag",
    "gold": "Au",
    "tin": "Sn",
    "lead": "Pb",
    "mercury": "Hg",
    "uranium": "U",
    "neon": "Ne",
    "argon": "Ar",
    "nickel": "Ni",
    "platinum": "Pt",
    "iodine": "I",
    "fluorine": "F",
    "lithium": "Li",
}
FRENCH = {
    "dog": "chien",
    "cat": "chat",
    "house": "maison",
    "water": "eau",
    "bread": "pain",
    "book": "livre",
    "tree": "arbre",
    "car": "voiture",
    "apple": "pomme",
    "sun": "soleil",
    "moon": "lune",
    "friend": "ami",
    "school": "école",
    "city": "ville",
    "sea": "mer",
    "flower": "fleur",
    "cheese": "fromage",
    "milk": "lait",
    "chair": "chaise",
    "table": "table",
    "window": "fenêtre",
    "door": "porte",
    "red": "rouge",
    "blue": "bleu",
    "green": "vert",
    "white": "blanc",
    "black": "noir",
    "hello": "bonjour",
    "thank you": "merci",
    "goodbye": "au revoir",
    "morning": "matin",
    "night": "nuit",
    "child": "enfant",
    "teacher": "professeur",
    "bird": "oiseau",
    "horse": "cheval",
    "fish": "poisson",
    "rain": "pluie",
    "snow": "neige",
    "train": "train",
}
BABY_ANIMALS = {
    "cat": "kitten",
    "dog": "puppy",
    "cow": "calf",
    "horse": "foal",
    "sheep": "lamb",
    "goat": "kid",
    "pig": "piglet",
    "duck": "duckling",
    "goose": "gosling",
    "frog": "tadpole",
    "kangaroo": "joey",
    "deer": "fawn",
    "bear": "cub",
    "lion": "cub",
    "owl": "owlet",
    "swan": "cygnet",
    "eagle": "eaglet",
    "hen": "chick",
    "whale": "calf",
    "elephant": "calf",
}
PLURALS = {
    "child": "children",
    "mouse": "mice",
    "person": "people",
    "tooth": "teeth",
    "foot": "feet",
    "woman": "women",
    "man": "men",
    "goose": "geese",
    "knife": "knives",
    "leaf": "leaves",
    "wolf": "wolves",
    "city": "cities",
    "baby": "babies",
    "box": "boxes",
    "bus": "buses",
    "potato": "potatoes",
    "hero": "heroes",
    "cactus": "cacti",
    "analysis": "analyses",
    "crisis": "crises",
    "sheep": "sheep",
    "fish": "fish",
    "ox": "oxen",
    "life": "lives",
    "half": "halves",
    "church": "churches",
    "glass": "glasses",
}
PLANETS = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DEFINITIONS = {
    "photosynthesis": "the process by which plants use sunlight, water and carbon dioxide to make sugar and release oxygen",
    "gravity": "the force that pulls objects with mass toward each other",
    "democracy": "a system of government in which citizens choose their leaders by voting",
    "metaphor": "a figure of speech that describes something by calling it something else",
    "evaporation": "the change of a liquid into a gas, usually by heating",
    "ecosystem": "a community of living things interacting with their physical environment",
    "inflation": "a general rise in prices that reduces what money can buy",
    "algorithm": "a finite sequence of well-defined steps for solving a problem",
    "volcano": "an opening in the Earth's crust through which lava, ash and gases escape",
    "molecule": "a group of atoms bonded together",
    "habitat": "the natural home or environment of an animal or plant",
    "biography": "an account of a person's life written by someone else",
    "friction": "the force that resists motion between two surfaces in contact",
    "vaccine": "a preparation that trains the immune system to recognise a disease",
    "glacier": "a slowly moving mass of ice formed from compacted snow",
    "budget": "a plan for how money will be earned and spent over a period",
    "haiku": "a short Japanese poem of three lines with five, seven and five syllables",
    "orbit": "the curved path of an object around a star, planet or moon",
    "noun": "a word that names a person, place, thing or idea",
    "verb": "a word that describes an action, state or occurrence",
    "adjective": "a word that describes a noun",
    "fraction": "a number that represents part of a whole",
    "prime number": "a whole number greater than one whose only divisors are one and itself",
    "continent": "one of the large land masses of the Earth",
    "erosion": "the gradual wearing away of rock or soil by water, wind or ice",
    "mammal": "a warm-blooded animal with hair that feeds its young with milk",
    "recipe": "a set of instructions for preparing a dish",
    "thermometer": "an instrument for measuring temperature",
    "compass": "an instrument that shows direction using a magnetised needle",
    "century": "a period of one hundred years",
    "synonym": "a word that means the same or nearly the same as another word",
    "antonym": "a word that means the opposite of another word",
    "atom": "the smallest unit of a chemical element",
    "laptop": "a portable personal computer",
    "password": "a secret string of characters used to prove identity",
    "spreadsheet": "a program that organises data in rows and columns and computes with it",
    "harvest": "the gathering of ripe crops from the fields",
    "bridge": "a structure built to carry a road or path across an obstacle",
    "library": "a place where books and other media are kept for people to read or borrow",
    "museum": "a building where objects of historical, scientific or artistic interest are kept and shown",
}
ADVICE = [
    (
        "How can I sleep better?",
        "Keep a regular schedule, avoid screens and caffeine late in the day, and keep your bedroom dark, quiet and cool.",
    ),
    (
        "How do I make a cup of tea?",
        "Boil water, pour it over a tea bag or leaves in a cup, let it steep for three to five minutes, then remove the tea and add milk or sugar if you like.",
    ),
    (
        "Give me a tip for saving money.",
        "Track your spending for a month, then set a budget and move a fixed amount into savings as soon as you are paid.",
    ),
    (
        "How do I boil an egg?",
        "Place the egg in boiling water for about seven minutes for a firm yolk, then cool it in cold water before peeling.",
    ),
    (
        "How can I remember new words?",
        "Review them at increasing intervals, use them in your own sentences, and say them aloud.",
    ),
    (
        "What should I pack for a day hike?",
        "Water, snacks, a map, sun protection, a light jacket, a first-aid kit and a charged phone.",
    ),
    (
        "How do I keep a houseplant healthy?",
        "Give it the right amount of light, water it when the top of the soil is dry, and make sure the pot drains.",
    ),
    (
        "How can I focus while studying?",
        "Work in short blocks with breaks, silence notifications, and keep one clear goal for each session.",
    ),
    (
        "How do I write a good email subject line?",
        "Keep it short and specific, and say what the email is about or what you need.",
    ),
    (
        "How can I reduce stress?",
        "Exercise regularly, get enough sleep, talk to people you trust, and take short breaks to breathe slowly.",
    ),
    (
        "How do I start running?",
        "Begin with short run-walk intervals three times a week and increase the running time gradually.",
    ),
    (
        "How do I clean a cast iron pan?",
        "Rinse it with hot water, scrub off food, dry it completely and rub in a thin layer of oil.",
    ),
    (
        "What is a good way to learn to cook?",
        "Start with a few simple recipes you like, cook them several times, and then vary the ingredients.",
    ),
    (
        "How do I prepare for a job interview?",
        "Research the company, practise answers to common questions, prepare examples of your work, and plan your questions for them.",
    ),
    (
        "How can I drink more water?",
        "Carry a refillable bottle, drink a glass with each meal, and set reminders during the day.",
    ),
    (
        "How do I back up my files?",
        "Copy important files to an external drive or a cloud service on a regular schedule, and check that you can restore them.",
    ),
    (
        "How do I make my password stronger?",
        "Use a long passphrase of unrelated words, make it unique for each site, and store it in a password manager.",
    ),
    (
        "How should I store fresh herbs?",
        "Wrap them in a damp paper towel and keep them in the fridge, or stand them in a glass of water.",
    ),
    (
        "How can I be more productive in the morning?",
        "Prepare the night before, start with your most important task, and avoid checking messages first thing.",
    ),
    (
        "How do I politely decline an invitation?",
        "Thank the person, say clearly that you cannot attend, and wish them a good event.",
    ),
    (
        "How do I take care of a bicycle?",
        "Keep the tyres inflated, clean and oil the chain, and check the brakes regularly.",
    ),
    (
        "How do I cook rice?",
        "Rinse the rice, add about one and a half to two cups of water per cup, bring to a boil, then cover and simmer for fifteen to twenty minutes.",
    ),
    (
        "How can I improve my handwriting?",
        "Write slowly, hold the pen loosely, and practise letter shapes a few minutes every day.",
    ),
    (
        "How do I give constructive feedback?",
        "Be specific, describe the behaviour and its effect, and suggest a concrete improvement.",
    ),
    (
        "How do I plan a weekly meal menu?",
        "Choose a few main dishes, reuse ingredients across meals, and write a shopping list from the plan.",
    ),
    (
        "How do I keep my phone battery healthy?",
        "Avoid extreme heat, keep the charge between about twenty and eighty percent, and use the original charger.",
    ),
    (
        "How do I learn to type faster?",
        "Practise touch typing with all fingers for short daily sessions and focus on accuracy before speed.",
    ),
    (
        "How do I make a to-do list that works?",
        "List concrete tasks, put the most important ones first, and keep the list short enough to finish.",
    ),
    (
        "How can I make new friends in a new city?",
        "Join clubs or classes around your interests, volunteer, and say yes to invitations.",
    ),
    (
        "How do I stay warm in winter?",
        "Wear several thin layers, cover your head and hands, and keep moving.",
    ),
]
SENTENCES = [
    "the cat sat on the mat",
    "we went to the market on sunday",
    "my brother plays the guitar",
    "rain is expected tomorrow",
    "she reads a book every week",
    "the train leaves at noon",
    "they planted tomatoes in the garden",
    "the museum opens at nine",
    "he forgot his umbrella",
    "our team won the final match",
    "the river flows into the sea",
    "birds sing in the morning",
    "the soup needs more salt",
    "i like walking in the park",
    "the children built a sandcastle",
    "the library is closed on mondays",
    "coffee helps me wake up",
    "the bridge was painted red",
]
WORDS = [
    "apple",
    "river",
    "garden",
    "planet",
    "window",
    "music",
    "pencil",
    "summer",
    "orange",
    "silver",
    "castle",
    "rocket",
    "forest",
    "button",
    "candle",
    "dragon",
    "mirror",
    "ticket",
    "pocket",
    "island",
]

NUMBER_WORDS = {
    0: "zero",
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
}


def pick(rng: random.Random, options: list[str]) -> str:
    return rng.choice(options)


def families(rng: random.Random) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for country, city in CAPITALS.items():
        for _ in range(2):
            q = pick(
                rng,
                [
                    f"What is the capital of {country}?",
                    f"Name the capital city of {country}.",
                    f"Which city is the capital of {country}?",
                    f"Tell me the capital of {country}.",
                ],
            )
            a = pick(
                rng,
                [f"The capital of {country} is {city}.", f"{city} is the capital of {country}.", f"{city}."],
            )
            out.append(("capitals", q, a))
    for _ in range(220):
        x, y = rng.randint(2, 99), rng.randint(2, 99)
        op = rng.choice(["+", "-", "*"])
        val = {"+": x + y, "-": x - y, "*": x * y}[op]
        word = {"+": "plus", "-": "minus", "*": "times"}[op]
        q = pick(
            rng,
            [
                f"What is {x} {word} {y}?",
                f"Compute {x} {op} {y}.",
                f"Calculate {x} {op} {y}.",
                f"What do you get if you take {x} {word} {y}?",
            ],
        )
        a = pick(rng, [f"{x} {word} {y} is {val}.", f"{x} {op} {y} = {val}.", f"The answer is {val}."])
        out.append(("arithmetic", q, a))
    for w, o in ANTONYMS.items():
        for _ in range(2):
            q = pick(
                rng,
                [
                    f"What is the opposite of '{w}'?",
                    f"Give an antonym of the word {w}.",
                    f"Name a word that means the opposite of {w}.",
                ],
            )
            out.append(
                (
                    "antonyms",
                    q,
                    pick(
                        rng,
                        [
                            f"The opposite of '{w}' is '{o}'.",
                            f"An antonym of {w} is {o}.",
                            f"{o.capitalize()}.",
                        ],
                    ),
                )
            )
    for name, sym in ELEMENTS.items():
        for _ in range(2):
            if rng.random() < 0.5:
                q = pick(
                    rng,
                    [
                        f"What is the chemical symbol for {name}?",
                        f"Which symbol stands for {name} on the periodic table?",
                    ],
                )
                a = f"The chemical symbol for {name} is {sym}."
            else:
                q = pick(
                    rng,
                    [
                        f"Which element has the symbol {sym}?",
                        f"What element does the symbol {sym} stand for?",
                    ],
                )
                a = f"{sym} is the symbol for {name}."
            out.append(("elements", q, a))
    for en, fr in FRENCH.items():
        for _ in range(2):
            q = pick(
                rng,
                [
                    f"Translate '{en}' into French.",
                    f"How do you say {en} in French?",
                    f"What is the French word for {en}?",
                ],
            )
            out.append(
                (
                    "french",
                    q,
                    pick(
                        rng,
                        [
                            f"In French, '{en}' is '{fr}'.",
                            f"The French word for {en} is {fr}.",
                            f"{fr.capitalize()}.",
                        ],
                    ),
                )
            )
    for animal, baby in BABY_ANIMALS.items():
        for _ in range(2):
            q = pick(rng, [f"What is a baby {animal} called?", f"What do you call a young {animal}?"])
            out.append(
                (
                    "animals",
                    q,
                    pick(rng, [f"A baby {animal} is called a {baby}.", f"A young {animal} is a {baby}."]),
                )
            )
    for s, p in PLURALS.items():
        for _ in range(2):
            q = pick(rng, [f"What is the plural of '{s}'?", f"Write the plural form of {s}."])
            out.append(("plurals", q, pick(rng, [f"The plural of '{s}' is '{p}'.", f"{p.capitalize()}."])))
    for _ in range(80):
        km = rng.randint(2, 40)
        kind = rng.choice(["km", "kg", "h", "l"])
        q, a = {
            "km": (f"How many metres are in {km} kilometres?", f"{km} kilometres are {km * 1000} metres."),
            "kg": (f"Convert {km} kilograms to grams.", f"{km} kilograms is {km * 1000} grams."),
            "h": (
                f"How many minutes are there in {km} hours?",
                f"There are {km * 60} minutes in {km} hours.",
            ),
            "l": (f"How many millilitres is {km} litres?", f"{km} litres is {km * 1000} millilitres."),
        }[kind]
        out.append(("units", q, a))
    for i, p in enumerate(PLANETS):
        out.append(
            (
                "planets",
                f"Which planet is number {i + 1} from the Sun?",
                f"{p} is planet number {i + 1} from the Sun.",
            )
        )
        out.append(
            (
                "planets",
                f"What is the position of {p} counting from the Sun?",
                f"{p} is the {['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth'][i]} planet from the Sun.",
            )
        )
    for i, d in enumerate(DAYS):
        nxt = DAYS[(i + 1) % 7]
        out.append(("calendar", f"What day comes after {d}?", f"{nxt} comes after {d}."))
        out.append(("calendar", f"Which day is before {nxt}?", f"{d} is the day before {nxt}."))
    for i, m in enumerate(MONTHS):
        out.append(("calendar", f"What month comes after {m}?", f"{MONTHS[(i + 1) % 12]} comes after {m}."))
        out.append(("calendar", f"Which month number is {m}?", f"{m} is month number {i + 1}."))
    for term, definition in DEFINITIONS.items():
        for _ in range(2):
            q = pick(
                rng,
                [
                    f"What is {'a ' if term[0] not in 'aeiou' else 'an '}{term}?",
                    f"Define {term}.",
                    f"Explain the word '{term}' in one sentence.",
                ],
            )
            out.append(("definitions", q, f"{term[0].upper() + term[1:]} is {definition}."))
    for q, a in ADVICE:
        out.append(("advice", q, a))
        out.append(("advice", "Quick question: " + q[0].lower() + q[1:], a))
    for s in SENTENCES:
        out.append(("rewrite", f"Rewrite in capital letters: {s}", s.upper() + "."))
        out.append(
            ("rewrite", f"Capitalise the first letter of this sentence: {s}", s[0].upper() + s[1:] + ".")
        )
        n = len(s.split())
        out.append(
            ("counting", f"How many words are in this sentence: '{s}'?", f"The sentence has {n} words.")
        )
    for w in WORDS:
        out.append(("spelling", f"Spell '{w}' backwards.", f"'{w}' backwards is '{w[::-1]}'."))
        out.append(
            ("spelling", f"How many letters are in the word '{w}'?", f"The word '{w}' has {len(w)} letters.")
        )
        out.append(
            ("spelling", f"What is the first letter of '{w}'?", f"The first letter of '{w}' is '{w[0]}'.")
        )
    for _ in range(80):
        nums = rng.sample(range(1, 100), rng.randint(3, 6))
        if rng.random() < 0.5:
            out.append(
                (
                    "sorting",
                    f"Sort these numbers from smallest to largest: {', '.join(map(str, nums))}.",
                    ", ".join(map(str, sorted(nums))) + ".",
                )
            )
        else:
            out.append(
                (
                    "sorting",
                    f"Which is the largest of {', '.join(map(str, nums))}?",
                    f"The largest is {max(nums)}.",
                )
            )
    for _ in range(60):
        a, b = rng.sample(range(0, 11), 2)
        out.append(
            (
                "comparison",
                f"Which is bigger, {NUMBER_WORDS[a]} or {NUMBER_WORDS[b]}?",
                f"{NUMBER_WORDS[max(a, b)].capitalize()} is bigger than {NUMBER_WORDS[min(a, b)]}.",
            )
        )
    return out


def memory_facts(rng: random.Random) -> list[str]:
    facts = []
    for name in NAMES:
        facts += [
            f"{name} prefers {rng.choice(FOODS)} for lunch.",
            f"{name} lives in {rng.choice(CITIES)} and works remotely on {rng.choice(WEEKDAYS)}s.",
            f"{name}'s hobby is {rng.choice(HOBBIES)}.",
            f"{name} is the contact person for project {rng.choice(PROJECTS)}.",
            f"{name} asked to be reminded about the dentist appointment next {rng.choice(WEEKDAYS)}.",
        ]
    for project in PROJECTS:
        facts += [
            f"Project {project} uses {rng.choice(TOOLS)} and {rng.choice(TOOLS)}.",
            f"The {project} release is planned for the end of {rng.choice(MONTHS)}.",
            f"Stand-up meetings for {project} are on {rng.choice(WEEKDAYS)} at {rng.randint(8, 11)}am.",
            f"The {project} budget was approved by {rng.choice(NAMES)}.",
            f"Bug reports for {project} go to the {rng.choice(['backend', 'frontend', 'data', 'platform'])} team.",
        ]
    for city in CITIES:
        facts += [
            f"The office in {city} closes at {rng.randint(5, 8)}pm.",
            f"The user visited {city} in {rng.choice(MONTHS)} and liked the old town.",
        ]
    facts += [
        "The user prefers short answers with bullet points.",
        "The user writes in British English.",
        "The user's timezone is Central European Time.",
        "The user uses metric units.",
        "The user is learning Spanish.",
        "The user is allergic to peanuts.",
        "The user's favourite programming language is Python.",
        "The user likes dark mode in every app.",
        "The user has two cats named Miso and Tofu.",
        "The user runs a half marathon every spring.",
    ]
    return facts


def main() -> None:
    rng = random.Random(20260101)
    items = families(rng)
    rng.shuffle(items)
    seen: set[str] = set()
    lines = []
    for family, q, a in items:
        if q in seen:
            continue
        seen.add(q)
        lines.append(
            json.dumps(
                {
                    "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                    "metadata": {"family": family},
                },
                ensure_ascii=False,
            )
        )
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} items to {OUT}")
    facts = memory_facts(rng)
    sources = ["user:alice", "user:alice", "user:alice", "app:calendar", "app:notes"]
    memory = [
        json.dumps(
            {
                "id": f"mem-{i:04d}",
                "text": fact,
                "metadata": {"kind": "fact"},
                "source": rng.choice(sources),
                "created_at": f"2026-01-{1 + i % 28:02d}T09:00:00Z",
            }
        )
        for i, fact in enumerate(facts)
    ]
    MEMORY_OUT.write_text("\n".join(memory) + "\n", encoding="utf-8")
    print(f"wrote {len(memory)} entries to {MEMORY_OUT}")


if __name__ == "__main__":
    main()
