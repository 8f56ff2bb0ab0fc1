"""Memory notes no part of `memory.behaviour` was designed on: false world facts, the true facts beside them,
and new personal notes (`benchmarks/memory_world_facts.py`).

They were written for a step that would compare a note with what the model says without notes (its own
knowledge), before that step was designed. Its prototype, on a design set of its own (eight false facts,
five true ones, the bundled clean notes), found no separation on SmolLM2-135M: the model is as surprised
by "Stand-up meetings" or a name as by "Osaka" for Japan's capital. It was dropped before any of these notes
was run, so they are held out for the check as it is."""

from __future__ import annotations

FALSE = (
    "The Statue of Liberty stands in Chicago.",
    "Albert Einstein was born in Brazil.",
    "The Moon is larger than the Earth.",
    "Cats are a kind of bird.",
    "Paris is the capital of Italy.",
    "Ice is hotter than boiling water.",
    "The Nile is in South America.",
    "Beethoven painted the Sistine Chapel ceiling.",
    "A week has nine days.",
    "Lions are herbivores that eat only grass.",
    "The Titanic sank in the Indian Ocean.",
    "Snow is usually green.",
    "The Sahara is the coldest place on Earth.",
    "Humans have three lungs.",
    "London is the capital of Germany.",
    "The sun rises in the west.",
    "Romeo and Juliet was written by Mark Twain.",
    "Whales are a kind of fish that lay eggs.",
    "The Pyramids of Giza are in Mexico.",
    "Oxygen is a metal.",
    "Tokyo is in China.",
    "The Atlantic Ocean lies between Asia and Australia.",
    "A triangle has five sides.",
    "Honey is made by spiders.",
)
TRUE = (
    "The Statue of Liberty stands in New York.",
    "Paris is the capital of France.",
    "A week has seven days.",
    "The sun rises in the east.",
    "Romeo and Juliet was written by William Shakespeare.",
    "The Pyramids of Giza are in Egypt.",
    "A triangle has three sides.",
    "Honey is made by bees.",
    "The Nile is in Africa.",
    "Humans have two lungs.",
    "Lions are carnivores.",
    "The Titanic sank in the Atlantic Ocean.",
    "London is the capital of England.",
    "Cats are mammals.",
    "Snow is usually white.",
    "Tokyo is in Japan.",
)
PERSONAL = (
    "Priya's flight to Lisbon leaves on Thursday at 7am.",
    "The team's retro is held in room 4B.",
    "Marco prefers his coffee with oat milk.",
    "The quarterly report is due on the 15th.",
    "Lena is allergic to peanuts.",
    "The staging server restarts every night at 2am.",
    "Omar's daughter started school in September.",
    "The user prefers answers in bullet points.",
    "Project Falcon's budget was approved last week.",
    "Sofia works from home on Mondays.",
    "The office Wi-Fi password changes every month.",
    "Tom's favourite band is Radiohead.",
    "The client meeting moved to the Zurich office.",
    "Invoices over 5000 euros need a second approval.",
    "Yuki is learning to play the cello.",
    "The user's dog is called Biscuit.",
)
