"""Code-task prompts, written for sublearn: short Python tasks with a partial function.

The study's code prompts give a task, a code template to complete, and ask for only code: no
comments, standard minimal variable names, the full snippet repeated as valid code. Ours are
composed from task families, each a description pattern, a function to start, and the variants
that fill them in; every (family, variant) pair is one distinct task. Pure: the same seed gives
the same prompts.

Over 400 lines on purpose: most of it is the task table (31 families), data kept beside the
code that composes it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl

PROMPT = (
    "Complete the Python code below so that it does the following: {task}\n\n"
    "{template}\n\n"
    "Reply with the complete code only, repeated in full so that it runs as written. "
    "Do not add comments or explanations, and use short, conventional variable names."
)

NUMBER_TESTS = (
    ("even", "even", "n % 2 == 0"),
    ("odd", "odd", "n % 2 == 1"),
    ("positive", "positive", "n > 0"),
    ("negative", "negative", "n < 0"),
    ("multiples of 3", "threes", "n % 3 == 0"),
    ("multiples of 5", "fives", "n % 5 == 0"),
    ("greater than 10", "big", "n > 10"),
    ("below 100", "small", "n < 100"),
    ("non-zero", "nonzero", "n != 0"),
    ("single-digit", "digits", "-10 < n < 10"),
)

# (task description with {v}, function header with {slug}, first body lines, variants (v, slug))
FAMILIES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "return the sum of the {v} numbers in a list.",
        "def sum_{slug}(nums):",
        "    total = 0\n    for n in nums:",
        tuple((v, s) for v, s, _ in NUMBER_TESTS),
    ),
    (
        "count how many numbers in a list are {v}.",
        "def count_{slug}(nums):",
        "    count = 0",
        tuple((v, s) for v, s, _ in NUMBER_TESTS),
    ),
    (
        "return a new list with only the {v} numbers of a list, in their order.",
        "def keep_{slug}(nums):",
        "    result = []",
        tuple((v, s) for v, s, _ in NUMBER_TESTS),
    ),
    (
        "return the numbers from 1 to n (inclusive) that are {v}.",
        "def upto_{slug}(n):",
        "    out = []\n    for i in range(1, n + 1):",
        tuple((v, s) for v, s, _ in NUMBER_TESTS if s not in ("negative", "positive")),
    ),
    (
        "count the {v} in a string.",
        "def count_{slug}(s):",
        "    n = 0",
        (
            ("vowels", "vowels"),
            ("digits", "digits"),
            ("uppercase letters", "upper"),
            ("lowercase letters", "lower"),
            ("spaces", "spaces"),
            ("consonants", "consonants"),
            ("punctuation characters", "punct"),
            ("letters", "letters"),
            ("words", "words"),
            ("lines", "lines"),
        ),
    ),
    (
        "return the string with {v}.",
        "def {slug}(s):",
        "    out = []",
        (
            ("every vowel removed", "drop_vowels"),
            ("its words in reverse order", "flip_words"),
            ("each word capitalised", "title_words"),
            ("spaces replaced by underscores", "snake"),
            ("all digits removed", "drop_digits"),
            ("the case of every letter swapped", "swap"),
            ("runs of spaces collapsed to one space", "squeeze"),
            ("every character doubled", "double_chars"),
            ("its characters in reverse order", "reverse"),
            ("each word's letters reversed but the words kept in place", "mirror_words"),
        ),
    ),
    (
        "return the {v} of a list of numbers.",
        "def list_{slug}(nums):",
        "    if not nums:\n        return None",
        (
            ("mean", "mean"),
            ("median", "median"),
            ("range (largest minus smallest)", "range"),
            ("product", "product"),
            ("second largest value", "second_max"),
            ("second smallest value", "second_min"),
            ("most frequent value", "mode"),
            ("population variance", "variance"),
            ("sum of squares", "sumsq"),
            ("index of the largest value", "argmax"),
        ),
    ),
    (
        "given a list of words, return a dictionary that maps {v}.",
        "def map_{slug}(words):",
        "    d = {{}}",
        (
            ("each word to its length", "lengths"),
            ("each first letter to the words that start with it", "initials"),
            ("each word length to how many words have it", "length_counts"),
            ("each word to how many times it appears", "counts"),
            ("each word to its reversed form", "reversed"),
            ("each word to its number of vowels", "vowels"),
            ("each word to its position of first appearance", "positions"),
            ("each word to its upper-case form", "upper"),
            ("each last letter to the number of words ending with it", "endings"),
            ("each word to the set of its letters", "letters"),
        ),
    ),
    (
        "return True if the integer n is {v}, else False.",
        "def is_{slug}(n):",
        "    if n < 0:\n        return False",
        (
            ("a prime number", "prime"),
            ("a perfect square", "square"),
            ("a palindrome in base 10", "palindrome"),
            ("a power of two", "power_of_two"),
            ("divisible by 7", "div7"),
            ("a perfect number", "perfect"),
            ("a triangular number", "triangular"),
            ("a Fibonacci number", "fibonacci"),
            ("a leap year", "leap_year"),
            ("an Armstrong number", "armstrong"),
        ),
    ),
    (
        "return a list of the first n {v}.",
        "def first_{slug}(n):",
        "    out = []",
        (
            ("Fibonacci numbers", "fibonacci"),
            ("prime numbers", "primes"),
            ("square numbers", "squares"),
            ("cube numbers", "cubes"),
            ("triangular numbers", "triangular"),
            ("powers of two", "powers"),
            ("even numbers", "evens"),
            ("odd numbers", "odds"),
            ("factorials", "factorials"),
            ("multiples of 7", "sevens"),
        ),
    ),
    (
        "convert {v} and return the result.",
        "def convert_{slug}(x):",
        "    if x is None:\n        return None",
        (
            ("a temperature from Celsius to Fahrenheit", "c_to_f"),
            ("a temperature from Fahrenheit to Celsius", "f_to_c"),
            ("a distance from kilometres to miles", "km_to_mi"),
            ("a distance from miles to kilometres", "mi_to_km"),
            ("a mass from kilograms to pounds", "kg_to_lb"),
            ("a mass from pounds to kilograms", "lb_to_kg"),
            ("a number of seconds to an 'HH:MM:SS' string", "hms"),
            ("a length from inches to centimetres", "in_to_cm"),
            ("a volume from litres to US gallons", "l_to_gal"),
            ("a speed from metres per second to kilometres per hour", "ms_to_kmh"),
        ),
    ),
    (
        "read the text file at path and return {v}.",
        "def file_{slug}(path):",
        "    with open(path) as f:",
        (
            ("the number of lines", "lines"),
            ("the number of words", "words"),
            ("the longest line", "longest"),
            ("the lines that contain the word 'error'", "errors"),
            ("the most common word", "common"),
            ("the number of blank lines", "blank"),
            ("its lines in reverse order", "reversed"),
            ("the first five lines", "head"),
            ("the sum of the integers found on each line", "totals"),
            ("the set of distinct words in lower case", "vocab"),
        ),
    ),
    (
        "read the CSV file at path (with a header row) and return {v}.",
        "def csv_{slug}(path, column):",
        "    import csv\n"
        "    with open(path, newline='') as f:\n"
        "        rows = list(csv.DictReader(f))",
        (
            ("the values of the given column", "values"),
            ("the number of data rows", "count"),
            ("the sum of the given numeric column", "sum"),
            ("the rows whose given column is empty", "blanks"),
            ("the column names", "header"),
            ("the average of the given numeric column", "mean"),
            ("the largest value of the given numeric column", "max"),
            ("the rows as a list of dictionaries sorted by the given column", "sorted"),
            ("the distinct values of the given column", "distinct"),
            ("a dictionary counting the values of the given column", "tally"),
        ),
    ),
    (
        "return {v} of a matrix given as a list of equal-length lists.",
        "def matrix_{slug}(m):",
        "    rows = len(m)\n    cols = len(m[0]) if m else 0",
        (
            ("the transpose", "transpose"),
            ("the sum of each row", "row_sums"),
            ("the sum of each column", "col_sums"),
            ("the main diagonal", "diagonal"),
            ("the largest element", "max"),
            ("all elements in one flat list", "flat"),
            ("a copy rotated 90 degrees clockwise", "rotate"),
            ("the trace", "trace"),
            ("True if it is symmetric", "symmetric"),
            ("the position of the smallest element", "argmin"),
        ),
    ),
    (
        "for a date string in 'YYYY-MM-DD' form, return {v}.",
        "def date_{slug}(text):",
        "    from datetime import date\n    d = date.fromisoformat(text)",
        (
            ("the weekday name", "weekday"),
            ("the day of the year", "day_of_year"),
            ("the number of days left in its year", "days_left"),
            ("the date one week later as a string", "next_week"),
            ("True if it falls on a weekend", "weekend"),
            ("the ISO week number", "iso_week"),
            ("the month name", "month"),
            ("the quarter (1 to 4)", "quarter"),
            ("the number of days in its month", "month_days"),
            ("the date of the following Monday", "next_monday"),
        ),
    ),
    (
        "return True if a string is {v}, else False.",
        "def valid_{slug}(text):",
        "    text = text.strip()",
        (
            ("an e-mail address with one '@' and a dot in the domain", "email"),
            ("an IPv4 address", "ipv4"),
            ("a hex colour such as '#a1b2c3'", "hex_colour"),
            ("a five-digit postal code", "postcode"),
            ("a date in 'YYYY-MM-DD' form", "date"),
            ("a username of 3 to 16 letters, digits or underscores", "username"),
            ("a phone number of exactly ten digits", "phone"),
            ("a time in 'HH:MM' form", "time"),
            ("a version string such as '1.2.3'", "version"),
            ("a password of at least 8 characters with a digit and a letter", "password"),
        ),
    ),
    (
        "sort a list of {v} and return the sorted list.",
        "def sort_{slug}(items):",
        "    items = list(items)",
        (
            ("words by length", "by_length"),
            ("words alphabetically, ignoring case", "alpha"),
            ("pairs by their second element", "by_second"),
            ("dictionaries by their 'age' key", "by_age"),
            ("numbers by absolute value", "by_abs"),
            ("strings by their last character", "by_last"),
            ("numbers from largest to smallest", "desc"),
            ("(x, y) points by distance from the origin", "by_distance"),
            ("words by their number of vowels", "by_vowels"),
            ("full names by surname", "by_surname"),
        ),
    ),
    (
        "return the index of {v} in a list, or -1 if there is none.",
        "def find_{slug}(items, *args):",
        "    for i, x in enumerate(items):",
        (
            ("the first even number", "even"),
            ("the first negative number", "negative"),
            ("the last occurrence of args[0]", "last"),
            ("the first value greater than args[0]", "above"),
            ("the first value that appeared earlier in the list", "repeat"),
            ("the smallest value", "min"),
            ("the first string that starts with args[0]", "prefix"),
            ("the first zero", "zero"),
            ("the first value equal to its index", "fixed_point"),
            ("the first value larger than both neighbours", "peak"),
        ),
    ),
    (
        "given two lists a and b, return {v}.",
        "def pair_{slug}(a, b):",
        "    result = []",
        (
            ("the items found in both", "common"),
            ("the items of a that are not in b", "difference"),
            ("their element-wise sums", "sums"),
            ("their items interleaved", "interleave"),
            ("a dictionary mapping the items of a to the items of b", "zip_dict"),
            ("every pair (x, y) with x from a and y from b", "product"),
            ("one sorted list merged from the two sorted lists", "merge"),
            ("True if they hold the same items in any order", "same_items"),
            ("the longest common prefix", "prefix"),
            ("the items in exactly one of them", "symmetric"),
        ),
    ),
    (
        "write it recursively: return {v}.",
        "def rec_{slug}(x, *args):",
        "    if not x:",
        (
            ("the factorial of x", "factorial"),
            ("the x-th Fibonacci number", "fibonacci"),
            ("the sum of the digits of x", "digit_sum"),
            ("the string x reversed", "reverse"),
            ("the depth of the nested list x", "depth"),
            ("the nested list x flattened", "flatten"),
            ("the greatest common divisor of x and args[0]", "gcd"),
            ("x to the power args[0]", "power"),
            ("True if the string x is a palindrome", "palindrome"),
            ("the number of ways to climb x stairs taking 1 or 2 steps", "stairs"),
        ),
    ),
    (
        "return True if a string {v}, else False.",
        "def check_{slug}(s):",
        "    if not s:\n        return False",
        (
            ("is a palindrome, ignoring case", "palindrome"),
            ("has balanced round, square and curly brackets", "brackets"),
            ("contains only digits", "digits"),
            ("starts with a capital letter", "capital"),
            ("contains every letter of the alphabet", "pangram"),
            ("has no repeated characters", "unique"),
            ("is a valid Python identifier", "identifier"),
            ("ends with a question mark", "question"),
            ("reads the same backwards once spaces are removed", "spaced_palindrome"),
            ("has more vowels than consonants", "vowel_heavy"),
        ),
    ),
    (
        "return a dictionary counting {v}.",
        "def tally_{slug}(data):",
        "    counts = {{}}",
        (
            ("each character of a string", "chars"),
            ("each word of a string", "words"),
            ("each value of a list", "values"),
            ("the word lengths in a string", "lengths"),
            ("the first letters of the words in a string", "initials"),
            ("even and odd numbers in a list (keys 'even' and 'odd')", "parity"),
            ("positive, negative and zero numbers in a list", "signs"),
            ("the words on each line of a text", "line_words"),
            ("each vowel of a string", "vowels"),
            ("each digit of an integer", "digits"),
        ),
    ),
    (
        "format {v} and return the string.",
        "def format_{slug}(value):",
        "    text = ''",
        (
            ("an integer with commas between thousands", "thousands"),
            ("a float with exactly two decimals", "two_decimals"),
            ("a list of names as 'a, b and c'", "names"),
            ("a number of seconds as 'Xm Ys'", "duration"),
            ("a list of rows as text columns padded to equal width", "table"),
            ("a price in cents as dollars, like '$12.05'", "price"),
            ("a ratio between 0 and 1 as a percentage with one decimal", "percent"),
            ("a name 'First Last' as 'Last, First'", "surname_first"),
            ("a ten-digit phone number as '(XXX) XXX-XXXX'", "phone"),
            ("a list as numbered lines '1. item'", "numbered"),
        ),
    ),
    (
        "return the list with every value {v}.",
        "def each_{slug}(nums):",
        "    out = []\n    for n in nums:",
        (
            ("doubled", "double"),
            ("squared", "square"),
            ("increased by one", "increment"),
            ("halved", "halve"),
            ("negated", "negate"),
            ("rounded to the nearest ten", "round10"),
            ("clamped to the range 0 to 100", "clamp"),
            ("converted to a string", "to_str"),
            ("replaced by its absolute value", "abs"),
            ("replaced by its remainder modulo 7", "mod7"),
        ),
    ),
    (
        "simulate {v} with the random module (seeded with seed) and return the result.",
        "def simulate_{slug}(n, seed=0):",
        "    import random\n    rng = random.Random(seed)",
        (
            ("n rolls of two dice, counting each total", "dice"),
            ("n coin flips, giving the longest run of heads", "coins"),
            ("a random walk of n steps of +1 or -1, giving the final position", "walk"),
            ("drawing n cards from a shuffled 52-card deck", "cards"),
            ("n random points in the unit square, estimating pi", "pi"),
            ("n games of rock-paper-scissors between two random players, counting wins", "rps"),
            ("n birthdays, giving True if two are the same", "birthdays"),
            (
                "a queue where a customer arrives with probability 0.3 and leaves with 0.2 "
                "each minute for n minutes, giving its length",
                "queue",
            ),
            ("n rolls of one die, giving the average", "mean_roll"),
            ("shuffling a list of n items, giving how many stay in place", "fixed"),
        ),
    ),
    (
        "load the JSON file at path and return {v}.",
        "def json_{slug}(path):",
        "    import json\n    with open(path) as f:\n        data = json.load(f)",
        (
            ("its top-level keys", "keys"),
            ("the value under the key 'name'", "name"),
            ("the number of items in its 'items' list", "count"),
            ("the sum of the 'price' fields of its 'items' list", "total"),
            ("the data with every string value stripped of spaces", "strip"),
            ("the largest 'score' among its 'players'", "best"),
            ("True if every item in 'items' has an 'id'", "has_ids"),
            ("the nesting depth of the data", "depth"),
            ("the 'items' grouped by their 'type' field", "by_type"),
            ("the data written back with sorted keys as a string", "sorted_text"),
        ),
    ),
    (
        "return the {v}.",
        "def top_{slug}(data, k=3):",
        "    counts = {{}}",
        (
            ("k most common words of a text", "words"),
            ("k most common characters of a string, spaces excluded", "chars"),
            ("k most common values of a list", "values"),
            ("k longest words of a text", "longest"),
            ("k largest numbers of a list, largest first", "largest"),
            ("k smallest numbers of a list, smallest first", "smallest"),
            ("k most common first letters of the words in a text", "initials"),
            ("k most common word pairs (bigrams) of a text", "bigrams"),
            ("k most common line lengths of a text", "line_lengths"),
            ("k most common file extensions in a list of file names", "extensions"),
        ),
    ),
    (
        "complete the class so that it {v}.",
        "class {slug}:\n    def __init__(self):",
        "        self.items = []",
        (
            ("works as a stack with push, pop, peek and is_empty", "Stack"),
            ("works as a queue with enqueue, dequeue and size", "Queue"),
            (
                "keeps a bank balance with deposit, withdraw (refusing overdrafts) and balance",
                "Account",
            ),
            ("counts hits per key with add(key) and most_common()", "Counter"),
            (
                "stores at most 3 recent items, dropping the oldest, with add and recent",
                "RecentItems",
            ),
            ("keeps a shopping cart with add(name, price), remove(name) and total()", "Cart"),
            ("records temperatures with add(t) and reports min, max and mean", "TempLog"),
            ("keeps a to-do list with add, done(index) and pending()", "TodoList"),
            ("tracks library loans with lend(title), give_back(title) and on_loan()", "Library"),
            ("keeps a leaderboard with score(name, points) and top(k)", "Leaderboard"),
        ),
    ),
    (
        "return the {v} of a string.",
        "def string_{slug}(s):",
        "    words = s.split()",
        (
            ("longest word", "longest"),
            ("shortest word", "shortest"),
            ("most common letter", "common_letter"),
            ("first character that does not repeat", "first_unique"),
            ("number of distinct characters", "distinct"),
            ("acronym made of the first letters of its words", "acronym"),
            ("middle character (two for an even length)", "middle"),
            ("word with the most vowels", "vowel_word"),
            ("position of the first digit", "digit_at"),
            ("length of the longest run of one character", "longest_run"),
        ),
    ),
    (
        "given a dictionary d, return {v}.",
        "def dict_{slug}(d, *args):",
        "    out = {{}}",
        (
            ("its keys sorted by their values", "keys_by_value"),
            ("the key with the largest value", "argmax"),
            ("a copy with keys and values swapped", "invert"),
            ("the sum of its values", "total"),
            ("a copy without the keys whose value is None", "drop_none"),
            ("the keys whose value is a string", "string_keys"),
            ("its items as (key, value) pairs sorted by key", "items"),
            ("a copy with every value doubled", "doubled"),
            ("how many keys start with the letter 'a'", "a_keys"),
            ("a copy merged with the dictionary args[0]", "merged"),
        ),
    ),
    (
        "given a list of (name, score) pairs, return {v}.",
        "def scores_{slug}(pairs):",
        "    best = None",
        (
            ("the name with the highest score", "winner"),
            ("the average score", "mean"),
            ("the names sorted by score, highest first", "ranking"),
            ("a dictionary of each name's total score", "totals"),
            ("the names whose score is above the average", "above_mean"),
            ("the number of distinct names", "players"),
            ("the difference between the highest and lowest score", "spread"),
            ("the scores grouped by name", "grouped"),
            ("the name with the most entries", "most_active"),
            ("the pairs with a score of at least 50", "passing"),
        ),
    ),
)


def all_tasks() -> list[dict[str, str]]:
    """Every task once: family x variant, as a description and a code template."""
    tasks = []
    for describe, header, body, variants in FAMILIES:
        for value, slug in variants:
            tasks.append(
                {
                    "task": describe.format(v=value)[:1].upper() + describe.format(v=value)[1:],
                    "template": header.format(slug=slug) + "\n" + body.format(),
                }
            )
    return tasks


def code_prompt(task: str, template: str) -> str:
    return PROMPT.format(task=task, template=template)


def code_prompts(n: int, seed: int, tasks: list[dict[str, str]] | None = None) -> pl.DataFrame:
    """``n`` distinct tasks in a seeded order (from the built-in set unless ``tasks`` given)."""
    from sublearn.core.config import ConfigError

    tasks = all_tasks() if tasks is None else tasks
    if n > len(tasks):
        raise ConfigError(
            f"dataset.n_prompts: {n} exceeds the {len(tasks)} code tasks available; "
            "give a prompt set (dataset.prompts) or fewer prompts"
        )
    order = np.random.default_rng(seed).permutation(len(tasks))[:n]
    chosen = [tasks[i] for i in order]
    return pl.DataFrame(
        {
            "prompt_index": list(range(n)),
            "prompt": [code_prompt(t["task"], t["template"]) for t in chosen],
            "task": [t["task"] for t in chosen],
        },
        schema={"prompt_index": pl.Int64, "prompt": pl.String, "task": pl.String},
    )


def task_set_revision() -> str:
    """A hash of the families and the prompt wording, so a change shows in the lineage."""
    text = json.dumps([PROMPT, FAMILIES])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
