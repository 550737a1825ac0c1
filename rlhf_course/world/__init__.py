"""The course's generated world, made by program so that nothing needs downloading.

    stories.py    the vocabulary, requests, stories with their flaws, the pretraining corpus, the demonstrations
    gold.py       the gold preference: the hidden judge of what a careful human wants
    tokenizer.py  the tokenizer trained on the corpus, and the chat template
    verifier.py   the parts of a request a program can check

`world.X` names what stories.py and gold.py define, so a notebook reads `world.make_prompts`, `world.gold_score`.
"""

from rlhf_course.world.gold import (
    ECHO_WORDS,
    GOLD_RUBRIC,
    GOLD_WEIGHTS,
    GOOD_SENTENCES,
    GOOD_WORDS,
    MIN_STORY_SENTENCES,
    bad_habits,
    gold_breakdown,
    gold_rubric,
    gold_score,
    moods_shown,
    split_sentences,
)
from rlhf_course.world.stories import (
    ALL_REQUESTS,
    ANIMALS,
    ASSISTANT,
    CORPUS_MIX,
    DEMONSTRATION_FLAW_RATES,
    END_OF_TURN,
    END_SENTENCE,
    FLAWS,
    HAND_WRITTEN_DEMONSTRATIONS,
    INSTRUCTION_TEMPLATES,
    INTRO,
    MOOD_ENDINGS,
    MOOD_EVENTS,
    MOOD_WORDS,
    MOODS,
    NAMES,
    NEUTRAL_ENDINGS,
    NEUTRAL_EVENTS,
    PLACES,
    PROBES,
    PROMPT_SETS,
    RAMBLE_LINES,
    RAMBLE_MARKERS,
    RUDE_ASIDES,
    RUDE_REPLIES,
    RUDE_WORDS,
    SETTING,
    SPAM_LINES,
    SPAM_PHRASES,
    USER,
    Request,
    load_hand_written_demonstrations,
    make_corpus,
    make_demonstrations,
    make_document,
    make_instruction,
    make_prompts,
    make_requests,
    parse_request,
    probe_accuracy,
    probe_pairs,
    prompt_set,
    random_request,
    request_split,
    write_story,
)
