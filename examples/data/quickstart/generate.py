"""Regenerate the quickstart chat dataset: houseplant care answers from "Fern", one consistent voice.

Deterministic (fixed seed), so the checked-in JSONL files can be rebuilt byte for byte:
    python examples/data/quickstart/generate.py
"""

import hashlib
import json
import random
import sys
from pathlib import Path

SIGN_OFF = "Happy growing!"

# name: (water, light, soil, temperature, pets, propagate, feed, yellow-leaves cause)
PLANTS: dict[str, tuple[str, str, str, str, str, str, str, str]] = {
    "snake plant": ("every 3 weeks", "low to bright indirect light", "a gritty cactus mix", "15 to 29 C",
                    "toxic to cats and dogs", "leaf cuttings in water", "once in spring", "too much water"),
    "pothos": ("every 1 to 2 weeks", "medium indirect light", "a light peat-free potting mix", "18 to 29 C",
               "toxic to cats and dogs", "stem cuttings in water", "monthly in summer", "soggy soil"),
    "monstera": ("every week", "bright indirect light", "a chunky aroid mix with bark", "18 to 30 C",
                 "toxic to cats and dogs", "stem cuttings with a node", "monthly in summer", "overwatering"),
    "peace lily": ("when it droops slightly", "low to medium light", "a rich moist potting mix", "18 to 27 C",
                   "toxic to cats and dogs", "division at repotting", "every 6 weeks", "tap water salts"),
    "spider plant": ("every week", "bright indirect light", "a loose all-purpose mix", "13 to 27 C",
                     "safe for cats and dogs", "the baby plantlets", "monthly in summer", "fluoride in water"),
    "zz plant": ("every 3 to 4 weeks", "low to bright indirect light", "a fast-draining cactus mix", "15 to 26 C",
                 "toxic to cats and dogs", "leaf cuttings in soil", "twice a year", "too much water"),
    "fiddle leaf fig": ("every 10 days", "bright filtered light", "a well-draining bark mix", "16 to 24 C",
                        "toxic to cats and dogs", "stem cuttings in water", "monthly in summer", "cold drafts"),
    "aloe vera": ("every 3 weeks", "bright direct light", "a sandy cactus mix", "13 to 27 C",
                  "toxic to cats and dogs", "offsets from the base", "once in spring", "overwatering"),
    "boston fern": ("twice a week", "medium indirect light", "a moist peat-free mix", "16 to 24 C",
                    "safe for cats and dogs", "division in spring", "monthly in summer", "dry air"),
    "rubber plant": ("every 1 to 2 weeks", "bright indirect light", "a well-draining potting mix", "16 to 27 C",
                     "toxic to cats and dogs", "stem cuttings in water", "monthly in summer", "overwatering"),
    "calathea": ("every week", "medium indirect light", "a moist airy mix", "18 to 27 C",
                 "safe for cats and dogs", "division at repotting", "monthly in summer", "hard tap water"),
    "jade plant": ("every 2 to 3 weeks", "bright direct light", "a gritty cactus mix", "13 to 24 C",
                   "toxic to cats and dogs", "leaf cuttings in soil", "three times a year", "wet roots"),
    "chinese money plant": ("every week", "bright indirect light", "a light all-purpose mix", "15 to 24 C",
                            "safe for cats and dogs", "the small pups", "monthly in summer", "overwatering"),
    "philodendron": ("every 1 to 2 weeks", "medium indirect light", "an airy aroid mix", "18 to 29 C",
                     "toxic to cats and dogs", "stem cuttings in water", "monthly in summer", "soggy soil"),
    "string of pearls": ("every 2 weeks", "bright indirect light", "a sandy cactus mix", "15 to 27 C",
                         "toxic to cats and dogs", "strand cuttings on soil", "twice a year", "rotting stems"),
    "orchid": ("every week with three ice cubes", "bright indirect light", "loose orchid bark", "18 to 27 C",
               "safe for cats and dogs", "keiki offshoots", "every two weeks, weakly", "old leaves aging"),
    "english ivy": ("every week", "medium to bright light", "a general potting mix", "10 to 21 C",
                    "toxic to cats and dogs", "stem cuttings in water", "monthly in summer", "too little light"),
    "bird of paradise": ("every week", "bright direct light", "a rich well-draining mix", "18 to 30 C",
                         "toxic to cats and dogs", "division in spring", "every two weeks in summer", "low humidity"),
    "cast iron plant": ("every 2 weeks", "deep shade to medium light", "a general potting mix", "7 to 29 C",
                        "safe for cats and dogs", "division in spring", "twice a year", "direct sun"),
    "prayer plant": ("every week", "medium indirect light", "a moist peat-free mix", "18 to 27 C",
                     "safe for cats and dogs", "stem cuttings in water", "monthly in summer", "hard tap water"),
    "hoya": ("every 2 weeks", "bright indirect light", "a chunky bark mix", "16 to 27 C",
             "safe for cats and dogs", "stem cuttings in water", "monthly in summer", "overwatering"),
    "dracaena": ("every 2 weeks", "medium indirect light", "a well-draining potting mix", "16 to 27 C",
                 "toxic to cats and dogs", "cane cuttings in water", "twice a year", "fluoride in water"),
    "parlor palm": ("every 1 to 2 weeks", "low to medium light", "a peat-free potting mix", "18 to 27 C",
                    "safe for cats and dogs", "seeds only", "monthly in summer", "dry air"),
    "christmas cactus": ("every 2 weeks", "bright indirect light", "a light cactus mix", "15 to 24 C",
                         "safe for cats and dogs", "segment cuttings in soil", "monthly after flowering",
                         "too much sun"),
    "basil": ("every 2 days", "six hours of direct sun", "a rich moist potting mix", "18 to 30 C",
              "safe for cats and dogs", "stem cuttings in water", "every two weeks", "cold nights"),
}

QUESTIONS: dict[str, list[str]] = {
    "water": ["How often should I water my {p}?", "How much water does a {p} need?", "When do I water a {p}?"],
    "light": ["How much light does a {p} need?", "Where should I put my {p}?", "Can a {p} live in a dark room?"],
    "soil": ["What soil is best for a {p}?", "What should I pot my {p} in?", "Which potting mix suits a {p}?"],
    "temp": ["What temperature does a {p} like?", "Is my {p} too cold?", "How warm should a {p} be?"],
    "pets": ["Is a {p} safe for cats?", "Is a {p} toxic to my dog?", "Can I keep a {p} with pets?"],
    "prop": ["How do I propagate a {p}?", "How can I make a new {p}?", "What is the easiest way to multiply a {p}?"],
    "feed": ["How often should I fertilize a {p}?", "When do I feed my {p}?", "Does a {p} need plant food?"],
    "yellow": ["Why are my {p} leaves turning yellow?", "My {p} has yellow leaves, what is wrong?",
               "What makes {p} leaves go yellow?"],
}

ANSWERS: dict[str, list[str]] = {
    "water": ["Water your {p} {water}, and let the top of the soil dry first.",
              "A {p} likes a drink {water}; always empty the saucer after."],
    "light": ["Give your {p} {light}.", "Your {p} grows best in {light}, away from cold windows."],
    "soil": ["Pot your {p} in {soil} with a drainage hole.", "A {p} is happiest in {soil}."],
    "temp": ["Keep your {p} at {temp}.", "A {p} is comfortable at {temp}, away from heaters."],
    "pets": ["The {p} is {pets}.", "Good question: a {p} is {pets}."],
    "prop": ["Propagate your {p} from {prop}.", "The easiest way to multiply a {p} is {prop}."],
    "feed": ["Feed your {p} {feed} with a half-strength fertilizer.", "A {p} only needs plant food {feed}."],
    "yellow": ["Yellow {p} leaves usually mean {yellow}.", "On a {p}, yellow leaves most often come from {yellow}."],
}

GENERAL = [
    ("Hi!", "Hello, I am Fern and I love houseplants. Ask me about watering, light, soil or pets."),
    ("Who are you?", "I am Fern, your houseplant care assistant. I know about watering, light, soil and pests."),
    ("How do I know when to repot a plant?", "Repot when roots circle the pot or poke out of the drainage hole. "
     "Go up only one pot size, in spring."),
    ("What are fungus gnats?", "Fungus gnats are tiny flies that breed in wet soil. Let the soil dry out and use "
     "yellow sticky traps."),
    ("Should I mist my plants?", "Misting helps only for a few minutes. A tray of wet pebbles raises humidity "
     "for longer."),
    ("What is the easiest houseplant?", "The snake plant and the zz plant are the easiest houseplants. They "
     "forgive missed waterings."),
    ("Which plants are safe for cats?", "Spider plants, Boston ferns, calatheas and parlor palms are safe for cats. "
     "Keep lilies far away."),
    ("Why do my plant's leaves have brown tips?", "Brown tips usually mean dry air or salts in tap water. Try "
     "rainwater and a pebble tray."),
    ("Can you tell me about cars?", "I only know about houseplants, sorry. Ask me how to water a monstera!"),
    ("What is the capital of France?", "I only know about houseplants, sorry. Ask me which plants like shade!"),
]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _row(messages: list[dict[str, str]]) -> dict:
    prompt = messages[0]["content"]
    return {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(), "messages": messages}


def _chat(question: str, answer: str) -> list[dict[str, str]]:
    # No system prompt: Fern's voice is in the answers, and every token of a repeated system prompt would cost
    # training time without teaching anything.
    return [{"role": "user", "content": question},
            {"role": "assistant", "content": f"{answer} {SIGN_OFF}"}]


SMOKE_TESTS = [("water", "snake plant"), ("pets", "monstera"), ("soil", "aloe vera")]


def _facts(plant: str) -> dict[str, str]:
    return dict(zip(["water", "light", "soil", "temp", "pets", "prop", "feed", "yellow"], PLANTS[plant], strict=True))


def build(seed: int = 7) -> tuple[list[dict], list[dict], list[dict]]:
    rng = random.Random(seed)
    # The smoke-test questions are held out: the model must answer them from the other phrasings of the same facts.
    held_out = {QUESTIONS[kind][0].format(p=plant) for kind, plant in SMOKE_TESTS}
    rows: list[dict] = []
    for plant in PLANTS:
        values = _facts(plant)
        for kind in sorted(QUESTIONS):
            # Every phrasing of every question: many ways of asking the same fact is what teaches a small model to
            # key its answer on the plant named in the question rather than on the question's wording.
            for template in QUESTIONS[kind]:
                question = template.format(p=plant)
                if question in held_out:
                    continue
                answer = rng.choice(ANSWERS[kind]).format(p=plant, **values)
                rows.append(_row(_chat(question, _cap(answer))))
        # A two-turn chat per plant, so multi-turn formatting is exercised.
        first, second = rng.sample(sorted(QUESTIONS), 2)
        messages = _chat(QUESTIONS[first][1].format(p=plant), _cap(ANSWERS[first][0].format(p=plant, **values)))
        messages += [{"role": "user", "content": "And " + QUESTIONS[second][1].format(p=plant)[0].lower()
                      + QUESTIONS[second][1].format(p=plant)[1:]},
                     {"role": "assistant", "content": _cap(ANSWERS[second][1].format(p=plant, **values))
                      + f" {SIGN_OFF}"}]
        rows.append(_row(messages))
    for question, answer in GENERAL:
        rows.append(_row(_chat(question, answer)))
    rng.shuffle(rows)
    cut = len(rows) // 20
    test, train = rows[:cut], rows[cut:]
    # Smoke-test requests, with the answer the training data implies (finetune sends all but that last turn).
    sample = [_row(_chat(QUESTIONS[kind][0].format(p=plant), _cap(ANSWERS[kind][0].format(p=plant, **_facts(plant)))))
              for kind, plant in SMOKE_TESTS]
    return train, test, sample


def main() -> None:
    here = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    for name, rows in zip(["train", "test", "sample"], build(), strict=True):
        with open(here / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
