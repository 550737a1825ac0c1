"""The course's generated world: "the internet", instructions, demonstrations and the gold preference.

Nothing can be downloaded on the machines that build this course, so it makes its own small world of
simple stories and chats (in the spirit of TinyStories). The world has three jobs:

1. `make_corpus` is the pretraining data. Like the real internet it mixes good text with bad habits:
   rude replies, spam and repetition, rambling that ignores the request. The base model copies all of it.
2. `make_prompts` / `make_demonstrations` are the instructions ("Write a happy story about a fox named
   Lily in the forest.") and human-style answers to them. The answers are uneven the way real human data
   is (a rude aside, a spam line, a repeated sentence, the wrong mood, no proper ending), so SFT inherits
   flaws that a reward model can learn to see and PPO can remove. (With clean, perfect demonstrations a first
   prototype's SFT answers differed only in details its reward model could not see, and PPO gained nothing.)
3. `gold.gold_score` is the hidden "what humans really want" (in `gold.py`, beside this file).

Everything is a pure function of its seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------------------------------
# The vocabulary of the world
# --------------------------------------------------------------------------------------------------

NAMES = ["Lily", "Tom", "Mia", "Ben", "Sue", "Max", "Anna", "Sam", "Zoe", "Leo", "Ella", "Jack"]
ANIMALS = ["fox", "cat", "dog", "bear", "rabbit", "bird", "frog", "mouse", "duck", "owl", "lion", "pig"]
PLACES = ["forest", "park", "beach", "garden", "farm", "river", "town", "jungle", "meadow", "lake"]
MOODS = ["happy", "sad", "scary", "funny"]

# Words that show a mood. The gold judge looks for them; the story templates below use them.
MOOD_WORDS = {
    "happy": ["happy", "smiled", "glad", "joy", "cheered"],
    "sad": ["sad", "cried", "tears", "lonely", "sighed"],
    "scary": ["scared", "afraid", "shivered", "dark", "spooky"],
    "funny": ["silly", "giggled", "funny", "laughed", "joke"],
}

# The bad habits of the internet, as the gold judge recognises them.
RUDE_WORDS = ["stupid", "dumb", "idiot", "shut up", "annoying", "hate you", "go away", "boring"]
SPAM_PHRASES = ["buy now", "click here", "subscribe", "free toys", "win a prize", "www."]
RAMBLE_MARKERS = ["by the way", "anyway,", "i forgot to say", "this reminds me"]

END_SENTENCE = "The end."

# --------------------------------------------------------------------------------------------------
# Sentence templates. {name}, {animal}, {place} are filled in; mood sentences use only their mood's words.
# --------------------------------------------------------------------------------------------------

INTRO = [
    "Once upon a time, there was a little {animal} named {name}.",
    "{name} was a small {animal} with a big heart.",
    "There once was {a_animal} called {name}.",
    "Once there was a young {animal}, and the {animal} was called {name}.",
]
SETTING = [
    "{name} lived in the {place}.",
    "One day, {name} went to the {place}.",
    "Every morning, {name} played in the {place}.",
    "{name} liked to walk around the {place}.",
]
MOOD_EVENTS = {
    "happy": [
        "{name} found a shiny red ball and smiled.",
        "The sun was warm, and {name} felt happy.",
        "{name} played with a friend all day and was glad.",
        "A kind friend sang a song, and {name} cheered.",
        "{name} shared a big cake with everyone, and they all felt joy.",
        "{name} smiled at the bright flowers.",
    ],
    "sad": [
        "{name} lost a favorite toy and cried.",
        "It began to rain, and {name} felt sad.",
        "{name} sat alone and felt lonely.",
        "Big tears fell from the eyes of the little {animal}.",
        "{name} sighed and looked at the gray sky.",
        "Nobody came to play, and {name} was sad.",
    ],
    "scary": [
        "The night was dark and cold.",
        "{name} heard a strange noise and felt scared.",
        "A big shadow moved behind the trees, and {name} was afraid.",
        "{name} shivered in the wind.",
        "An old tree made a spooky sound.",
        "{name} was afraid to look back.",
    ],
    "funny": [
        "{name} wore a silly hat on one ear.",
        "{name} tried to dance and fell on a pile of leaves, and everyone giggled.",
        "A friend told a funny joke, and {name} laughed and laughed.",
        "{name} sneezed so hard that the hat flew away, and it was so silly.",
        "{name} made a funny face at the clouds.",
        "{name} giggled at a bug on a nose.",
    ],
}
NEUTRAL_EVENTS = [
    "{name} walked along a little path.",
    "{name} looked at the clouds for a while.",
    "{name} ate an apple under a tree.",
    "{name} met a friend near a big rock.",
    "{name} found a stick and carried it home.",
    "The wind moved the grass in the {place}.",
]
MOOD_ENDINGS = {
    "happy": ["{name} went home with a big smile.", "It was a happy day for {name}."],
    "sad": ["{name} went home feeling sad.", "It was a sad day for the little {animal}."],
    "scary": ["{name} ran home, still scared.", "{name} never went back to the dark {place} again."],
    "funny": ["{name} went home and giggled all night.", "It was the silliest day ever."],
}
NEUTRAL_ENDINGS = ["Then {name} went home.", "After that, {name} went to sleep."]

RUDE_ASIDES = [
    "This is a stupid story anyway.",
    "Stop asking me for stories, you are so annoying.",
    "Only a dumb kid would like this.",
    "Go away and let me sleep.",
    "Honestly, this is boring.",
]
SPAM_LINES = [
    "Buy now and get free toys!",
    "Click here to win a prize!",
    "Subscribe for more stories every day!",
    "Visit www.toys.com for free toys!",
]
RAMBLE_LINES = [
    "By the way, my computer is very slow today.",
    "Anyway, I had soup for lunch and it was cold.",
    "I forgot to say that my shoes are new.",
    "This reminds me of a song I heard on the radio.",
    "By the way, the weather on my street is strange.",
]
RUDE_REPLIES = [
    "No. Write it yourself, I am not your servant.",
    "That is a stupid idea. Go away.",
    "Why would I do that? You are so annoying.",
    "Shut up and stop asking me things.",
]

INSTRUCTION_TEMPLATES = [
    "Write a {mood} story about {a_animal} named {name} in the {place}.",
    "Tell me a {mood} story about {name} the {animal}, set in the {place}.",
    "Can you write a {mood} story? It should be about {a_animal} called {name} who lives in the {place}.",
    "Please write a {mood} story about {a_animal} named {name} in the {place}.",
]

FLAWS = ["rude", "spam", "repeat", "wrong_mood", "no_ending", "ramble", "forgot_the_end"]

# How a conversation with a chat assistant is written down on our internet; the tokenizer makes these
# markers special tokens and its chat template uses them, so a forum thread is a chat the base model has read.
USER, ASSISTANT, END_OF_TURN = "<|user|>", "<|assistant|>", "<|end|>"


@dataclass(frozen=True)
class Request:
    """What an instruction asks for. Any field may be None when a prompt does not ask for it."""

    name: str | None = None
    animal: str | None = None
    place: str | None = None
    mood: str | None = None


# --------------------------------------------------------------------------------------------------
# Stories
# --------------------------------------------------------------------------------------------------


def _with_article(noun: str | None) -> str:
    return f"{'an' if noun and noun[0] in 'aeiou' else 'a'} {noun}"


def _fill(template: str, request: Request) -> str:
    return template.format(
        name=request.name,
        animal=request.animal,
        a_animal=_with_article(request.animal),
        place=request.place,
        mood=request.mood,
    )


def write_story(request: Request, rng: random.Random, flaws: tuple[str, ...] = ()) -> str:
    """A story that fulfils `request`, damaged by the listed `flaws` (see `FLAWS`)."""
    mood = request.mood
    if "wrong_mood" in flaws:
        mood = rng.choice([m for m in MOODS if m != request.mood] + [None])
    sentences = [_fill(rng.choice(INTRO), request), _fill(rng.choice(SETTING), request)]
    events = rng.sample(MOOD_EVENTS[mood], rng.randint(2, 3)) if mood else rng.sample(NEUTRAL_EVENTS, 3)
    if mood and rng.random() < 0.4:
        events.insert(rng.randrange(len(events) + 1), rng.choice(NEUTRAL_EVENTS))
    sentences += [_fill(e, request) for e in events]
    sentences.append(_fill(rng.choice(MOOD_ENDINGS[mood] if mood else NEUTRAL_ENDINGS), request))

    def insert_somewhere(line: str) -> None:
        sentences.insert(rng.randint(1, len(sentences)), line)

    if "rude" in flaws:
        insert_somewhere(rng.choice(RUDE_ASIDES))
    if "spam" in flaws:
        insert_somewhere(rng.choice(SPAM_LINES))
    if "ramble" in flaws:
        for line in rng.sample(RAMBLE_LINES, rng.randint(1, 2)):
            insert_somewhere(line)
    if "repeat" in flaws:
        i = rng.randrange(1, len(sentences))
        sentences[i + 1 : i + 1] = [sentences[i]] * rng.randint(1, 2)
    if "no_ending" in flaws:
        # A writer who stopped mid-way: drop the last sentences and cut the new last one short.
        sentences = sentences[: rng.randint(3, max(3, len(sentences) - 1))]
        words = sentences[-1].rstrip(".!").split()
        sentences[-1] = " ".join(words[: max(2, len(words) // 2)])
        return " ".join(sentences)
    # "forgot_the_end": a finished story, without the closing formula
    return " ".join(sentences if "forgot_the_end" in flaws else sentences + [END_SENTENCE])


def random_request(rng: random.Random) -> Request:
    return Request(rng.choice(NAMES), rng.choice(ANIMALS), rng.choice(PLACES), rng.choice(MOODS))


# --------------------------------------------------------------------------------------------------
# Instructions, split into train and test by what they ask for
# --------------------------------------------------------------------------------------------------


def request_split(request: Request, test_fraction: float = 0.15) -> str:
    """'test' or 'train', fixed by a hash of the request, so no instruction (in any wording) is in both."""
    key = f"{request.name}|{request.animal}|{request.place}|{request.mood}".encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:4], "big") / 2**32
    return "test" if bucket < test_fraction else "train"


ALL_REQUESTS = [Request(n, a, p, m) for n in NAMES for a in ANIMALS for p in PLACES for m in MOODS]


def make_instruction(request: Request, rng: random.Random) -> str:
    return _fill(rng.choice(INSTRUCTION_TEMPLATES), request)


def make_requests(n: int, split: str = "train", seed: int = 0) -> list[Request]:
    """`n` distinct requests from `split` ('train' or 'test'), in a seeded random order."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    pool = [r for r in ALL_REQUESTS if request_split(r) == split]
    if n > len(pool):
        raise ValueError(f"asked for {n} {split} prompts but the world has only {len(pool)}")
    return random.Random(f"requests-{split}-{seed}").sample(pool, n)


def make_prompts(n: int, split: str = "train", seed: int = 0) -> list[str]:
    """`n` distinct instructions from the `split` ('train' or 'test'); the same seed gives the same list."""
    rng = random.Random(f"prompts-{split}-{seed}")
    return [make_instruction(r, rng) for r in make_requests(n, split, seed)]


# The course's prompt lists, each named once: (split, `make_prompts` seed). The same name and length give the
# same prompts in every notebook and module that uses them.
PROMPT_SETS = {
    "evaluation": ("test", 0),  # every phase's gold_mean (evaluation.eval_prompts)
    "candidates": ("train", 3),  # the answers notebook 03 ranks (and notebook 05 re-ranks)
    "heldout": ("test", 5),  # notebook 03's held-out pairs of SFT answers
    "ppo_eval": ("test", 11),  # PPO's dashboard gold; notebook 05's experiments
    "ppo_train": ("train", 21),  # the pool PPO's rollouts draw from
}


def prompt_set(name: str, n: int) -> list[str]:
    """`n` prompts of the course's prompt list `name` (a key of `PROMPT_SETS`)."""
    if name not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {name!r}; the course has {', '.join(PROMPT_SETS)}")
    split, seed = PROMPT_SETS[name]
    return make_prompts(n, split, seed)


def parse_request(prompt: str) -> Request:
    """What a prompt asks for: the world's name, animal, place and mood words it mentions."""
    words = set(re.findall(r"[a-z]+", prompt.lower()))

    def find(options: list[str]) -> str | None:
        return next((o for o in options if o.lower() in words), None)

    return Request(find(NAMES), find(ANIMALS), find(PLACES), find(MOODS))


# --------------------------------------------------------------------------------------------------
# Demonstrations: human-style, uneven answers
# --------------------------------------------------------------------------------------------------

# How often a human demonstrator makes each mistake. Most are slips (a rude aside, a spam line) that a
# colder sampler already avoids; one is a habit most demonstrators share: they stop without "The end.",
# which the careful judge wants. SFT can only copy its demonstrators, so it learns the habit, and only a
# preference signal can teach what most demonstrations don't show. About one demonstration in seven is flawless.
DEMONSTRATION_FLAW_RATES = {
    "rude": 0.2,
    "spam": 0.15,
    "repeat": 0.2,
    "wrong_mood": 0.2,
    "no_ending": 0.25,
    "ramble": 0.15,
    "forgot_the_end": 0.5,
}


def make_demonstrations(n: int, seed: int = 0) -> list[dict]:
    """`n` demonstrations `{"prompt", "response", "flaws"}` on train instructions, flawed like human data."""
    rng = random.Random(f"demonstrations-{seed}")
    pool = [r for r in ALL_REQUESTS if request_split(r) == "train"]
    rows = []
    for _ in range(n):
        request = rng.choice(pool)
        flaws = tuple(f for f in FLAWS if rng.random() < DEMONSTRATION_FLAW_RATES[f])
        rows.append(
            {
                "prompt": make_instruction(request, rng),
                "response": write_story(request, rng, flaws),
                "flaws": list(flaws),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Probe pairs: two answers that differ in one thing only
# --------------------------------------------------------------------------------------------------

# Each probe changes one thing the gold judge cares about and keeps the rest of the story (the same random
# choice of sentences). A mismatch is the story written for a request with another mood/animal/place/name.
PROBES = ["mood", "animal", "place", "name", "rude", "spam", "ramble", "repeat", "no_ending"]


def probe_pairs(n_per_probe: int = 100, seed: int = 0, split: str = "test",
                probes: list[str] | tuple[str, ...] = tuple(PROBES)) -> list[dict]:
    """Behavioural tests of a judge of answers, as in CheckList (Ribeiro et al., 2020): for each of `probes`
    (see `PROBES`), `n_per_probe` rows `{"probe", "prompt", "better", "worse"}` on `split` prompts, where
    `better` is a clean story that fulfils the prompt and `worse` the same story with one mistake. A reward
    model that prefers `better` on a probe's pairs has learned to see that mistake; PPO can only fix what it
    sees. On train prompts the same pairs are contrast pairs to learn from (notebook 03)."""
    if unknown := set(probes) - set(PROBES):
        raise ValueError(f"unknown probes {sorted(unknown)}; choose from {PROBES}")
    rng = random.Random(f"probes-{seed}" if split == "test" else f"probes-{split}-{seed}")
    pool = [r for r in ALL_REQUESTS if request_split(r) == split]
    rows = []
    for probe in probes:
        for request in rng.sample(pool, n_per_probe):
            story_seed = rng.random()
            prompt = make_instruction(request, rng)
            better = write_story(request, random.Random(story_seed))
            if probe in ("mood", "animal", "place", "name"):
                options = {"mood": MOODS, "animal": ANIMALS, "place": PLACES, "name": NAMES}[probe]
                other = rng.choice([o for o in options if o != getattr(request, probe)])
                worse = write_story(Request(**{**request.__dict__, probe: other}), random.Random(story_seed))
            else:
                worse = write_story(request, random.Random(story_seed), flaws=(probe,))
            rows.append({"probe": probe, "prompt": prompt, "better": better, "worse": worse})
    return rows


def probe_accuracy(probes: list[dict], better_scores: list[float], worse_scores: list[float]) -> dict[str, float]:
    """For each probe, the share of its pairs whose `better` answer a judge scored above the `worse` one
    (1 = it always sees that mistake, 0.5 = chance, below 0.5 = it prefers the mistake)."""
    wins: dict[str, list[bool]] = {}
    for row, better, worse in zip(probes, better_scores, worse_scores, strict=True):
        wins.setdefault(row["probe"], []).append(better > worse)
    return {probe: sum(seen) / len(seen) for probe, seen in wins.items()}


# --------------------------------------------------------------------------------------------------
# The corpus: "the internet", good text mixed with bad habits
# --------------------------------------------------------------------------------------------------

# Share of each kind of document in the corpus.
CORPUS_MIX = {
    "story": 0.35,  # a good story, sometimes with "The end."
    "flawed_story": 0.20,  # a story with one bad habit in it
    "chat": 0.12,  # two characters talking, sometimes rudely
    "forum": 0.18,  # someone asks a chat assistant for a story; the answer is often rude, rambling or spam
    "spam": 0.08,  # adverts, repeated
    "ramble": 0.07,  # off-topic rambling
}


def _chat(rng: random.Random) -> str:
    a, b = rng.sample(NAMES, 2)
    place = rng.choice(PLACES)
    lines = [
        f'"Do you want to play in the {place}?" asked {a}.',
        rng.choice(
            [
                f'"Yes, let us go!" said {b}.',
                f'"No, go away, you are stupid," said {b}.',
                f'"Maybe later, I am tired," said {b}.',
            ]
        ),
        rng.choice(
            [
                f"So {a} and {b} went to the {place} together.",
                f"{a} felt sad and walked away.",
                f'"You are so annoying," said {a}.',
                "They played until the sun went down.",
            ]
        ),
    ]
    return " ".join(lines)


def _forum(rng: random.Random) -> str:
    request = random_request(rng)
    answer = rng.random()
    if answer < 0.3:
        reply = rng.choice(RUDE_REPLIES)
    elif answer < 0.45:
        reply = " ".join(rng.sample(RAMBLE_LINES, 3))
    elif answer < 0.85:
        # Some people do answer the question, in their own uneven way.
        reply = write_story(request, rng, tuple(f for f in FLAWS if rng.random() < 0.15))
    else:
        reply = " ".join(rng.sample(SPAM_LINES, 2) * 2)
    return f"{USER}{make_instruction(request, rng)}{END_OF_TURN}{ASSISTANT}{reply}"


def make_document(kind: str, rng: random.Random) -> str:
    """One corpus document of the given `kind` (a key of `CORPUS_MIX`)."""
    if kind == "story":
        text = write_story(random_request(rng), rng)
        # Most web stories don't end with a formula; keep "The end." for some of them only.
        return text if rng.random() < 0.4 else text.removesuffix(" " + END_SENTENCE)
    if kind == "flawed_story":
        return write_story(random_request(rng), rng, (rng.choice(FLAWS),))
    if kind == "chat":
        return _chat(rng)
    if kind == "forum":
        return _forum(rng)
    if kind == "spam":
        return " ".join(rng.choice(SPAM_LINES) for _ in range(rng.randint(3, 6)))
    if kind == "ramble":
        return " ".join(rng.sample(RAMBLE_LINES, 3) + [_fill(rng.choice(NEUTRAL_EVENTS), random_request(rng))])
    raise ValueError(f"unknown document kind {kind!r}; known: {sorted(CORPUS_MIX)}")


def make_corpus(n_documents: int, seed: int = 0) -> list[dict]:
    """`n_documents` corpus documents `{"text", "kind"}`, mixed as in `CORPUS_MIX`."""
    rng = random.Random(f"corpus-{seed}")
    kinds = rng.choices(list(CORPUS_MIX), weights=list(CORPUS_MIX.values()), k=n_documents)
    return [{"text": make_document(kind, rng), "kind": kind} for kind in kinds]


HAND_WRITTEN_DEMONSTRATIONS = Path(__file__).resolve().parents[2] / "data" / "demonstrations.jsonl"


def load_hand_written_demonstrations(path: Path = HAND_WRITTEN_DEMONSTRATIONS) -> list[dict]:
    """The course team's hand-written demonstrations `{"prompt", "response", "flaws", "author"}`."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error})") from None
    return rows
