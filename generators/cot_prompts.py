"""Chain-of-thought prompts: grade-school word problems with exact answers, written for sublearn.

The study used GSM8K's training questions (``prompts: gsm8k`` reads them, pinned); with no
network the built-in generator makes problems of the same grade in six shapes (rates, shopping
with change, ages, sharing with remainders, percentages, unit conversions), each with a worked
answer in GSM8K's format (steps, then "#### N"). Every question is asked ``samples`` times, with
a suffix asking for reasoning in <think> tags and the number alone in <answer> tags. Pure: the
same seed gives the same problems.
"""

from __future__ import annotations

import hashlib
import inspect
import json

import numpy as np
import polars as pl

SUFFIX = (
    "Work through the problem step by step inside <think></think> tags. After that, write only "
    "the final number inside <answer></answer> tags."
)

NAMES = (
    "Ada", "Ben", "Carla", "Dev", "Elif", "Femi", "Greta", "Hugo", "Imani", "Jon", "Kira",
    "Liam", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara",
)  # fmt: skip
GOODS = (
    ("notebook", 3), ("pen", 2), ("apple", 1), ("sandwich", 6), ("ticket", 12), ("plant", 9),
    ("mug", 7), ("scarf", 15), ("candle", 4), ("puzzle", 11),
)  # fmt: skip
BILLS = (5, 10, 20, 50, 100)
THINGS = ("marbles", "stickers", "cookies", "stamps", "coins", "beads", "cards", "shells")


def _rate(rng: np.random.Generator) -> tuple[str, str, int]:
    name, rate, hours = rng.choice(NAMES), int(rng.integers(3, 40)), int(rng.integers(2, 12))
    total = rate * hours
    return (
        f"{name} packs {rate} boxes every hour. How many boxes does {name} pack in {hours} hours?",
        f"Each hour gives {rate} boxes, so {hours} hours give {rate} * {hours} = {total}.",
        total,
    )


def _change(rng: np.random.Generator) -> tuple[str, str, int]:
    name = rng.choice(NAMES)
    item, price = GOODS[int(rng.integers(len(GOODS)))]
    count = min(int(rng.integers(2, 8)), 99 // price)  # the largest bill must cover the cost
    cost = count * price
    bill = next(b for b in BILLS if b > cost)
    return (
        f"{name} buys {count} {item}s at ${price} each and pays with a ${bill} bill. "
        f"How much change does {name} get, in dollars?",
        f"The {item}s cost {count} * {price} = {cost} dollars. The change is {bill} - {cost} = "
        f"{bill - cost}.",
        bill - cost,
    )


def _ages(rng: np.random.Generator) -> tuple[str, str, int]:
    a, b = rng.choice(NAMES, size=2, replace=False)
    young, times, years = (
        int(rng.integers(3, 15)),
        int(rng.integers(2, 5)),
        int(rng.integers(1, 10)),
    )
    now = young * times
    return (
        f"{a} is {times} times as old as {b}. {b} is {young} years old. How old will {a} be in "
        f"{years} years?",
        f"{a} is {times} * {young} = {now} now, so in {years} years {a} will be {now} + {years} = "
        f"{now + years}.",
        now + years,
    )


def _sharing(rng: np.random.Generator) -> tuple[str, str, int]:
    name, things = rng.choice(NAMES), rng.choice(THINGS)
    friends = int(rng.integers(3, 9))
    total = friends * int(rng.integers(2, 12)) + int(rng.integers(1, friends))
    each, left = divmod(total, friends)
    return (
        f"{name} has {total} {things} and shares them equally among {friends} friends, giving "
        f"each friend as many as possible. How many {things} are left over?",
        f"{total} divided by {friends} is {each} each, which uses {each * friends}. "
        f"{total} - {each * friends} = {left} are left.",
        left,
    )


def _percent(rng: np.random.Generator) -> tuple[str, str, int]:
    item, _ = GOODS[int(rng.integers(len(GOODS)))]
    price = 20 * int(rng.integers(1, 15))
    off = int(rng.choice([10, 20, 25, 50, 75]))
    discount = price * off // 100
    return (
        f"A {item} costs ${price}. It is on sale for {off}% off. What is the sale price in "
        f"dollars?",
        f"The discount is {off}% of {price} = {discount}. The sale price is {price} - {discount} = "
        f"{price - discount}.",
        price - discount,
    )


def _units(rng: np.random.Generator) -> tuple[str, str, int]:
    name = rng.choice(NAMES)
    hours, minutes = int(rng.integers(1, 6)), int(rng.integers(1, 60))
    total = hours * 60 + minutes
    return (
        f"{name} hikes for {hours} hours and {minutes} minutes. How many minutes is that in total?",
        f"{hours} hours are {hours} * 60 = {hours * 60} minutes; {hours * 60} + {minutes} = "
        f"{total}.",
        total,
    )


SHAPES = (_rate, _change, _ages, _sharing, _percent, _units)


def word_problems(n: int, seed: int) -> pl.DataFrame:
    """``n`` problems (question, GSM8K-format answer), the shapes in turn, seeded."""
    rng = np.random.default_rng(seed)
    rows = [SHAPES[i % len(SHAPES)](rng) for i in range(n)]
    return pl.DataFrame(
        {
            "question": [q for q, _, _ in rows],
            "answer": [f"{steps}\n#### {value}" for _, steps, value in rows],
        }
    )


def cot_prompts(questions: pl.DataFrame, samples: int) -> pl.DataFrame:
    """Each question ``samples`` times, with the suffix; ``answer`` is the reference."""
    base = questions.select("question", "answer").with_row_index("question_index")
    repeated = base.join(
        pl.DataFrame({"sample": list(range(samples))}, schema={"sample": pl.Int64}), how="cross"
    ).sort("question_index", "sample")
    return repeated.with_row_index("prompt_index").select(
        pl.col("prompt_index").cast(pl.Int64),
        (pl.col("question") + pl.lit("\n\n" + SUFFIX)).alias("prompt"),
        pl.col("question_index").cast(pl.Int64),
        "sample",
        pl.col("answer").cast(pl.String),
    )


def generator_revision() -> str:
    """A hash of the generator's wording and shapes, so a change shows in the lineage."""
    text = json.dumps([SUFFIX, NAMES, GOODS, THINGS, [inspect.getsource(s) for s in SHAPES]])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
