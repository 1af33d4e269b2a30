"""The answer forms' grammars (``generators.output_formats``) and their token masks
(``generators.grammar_masks``): hand-written answers they accept and reject, read through the
embedded tokenizer's real tokenization (whose merges split tags and fences in odd places);
the torch loop and transformers' ``generate`` under the same grammar write the same greedy
text; every constrained answer passes the form checks of its kind's filter."""

from __future__ import annotations

import ast
import re

import pytest
import torch

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import ConfigError, parse_config
from sublearn.core.model_source import resolve_model
from sublearn.generators.backends import load_teacher
from sublearn.generators.grammar_masks import GrammarMasks
from sublearn.generators.output_formats import CODE_GRAMMAR, COT, OutputFormat, cot_grammar

CODE_OK = [
    "```python\ndef add(a, b):\n    return a + b\n```",
    "```python\nx = [i * i for i in range(10)]\n\nprint(x)\n```",
]
CODE_BAD = [
    "Here is the code:\n```python\nx = 1\n```",  # prose before the fence
    "```python\nx = 1\n```\nThis adds one.",  # prose after it
    "```python\nx = `1`\n```",  # a backtick inside the block
    "x = 1\n",  # no fence
    "```\nx = 1\n```",  # no language
]
COT_OK = [
    "<think>6 eggs a day for 7 days is 42.</think>\n<answer>42</answer>",
    "<think>Half of 3 is 1.5</think>\n<answer>-1.5</answer>",
    "<think>\n  3 + 4 = 7\n</think>\n<answer>7</answer>",  # blanks around the reasoning
]
COT_BAD = [
    "The answer is 42.",
    "<think>x</think><answer>42</answer>",  # no newline between the parts
    "<think></think>\n<answer>42</answer>",  # empty reasoning
    "<think>  \n </think>\n<answer>42</answer>",  # reasoning of blanks only
    "<think>a < b</think>\n<answer>1</answer>",  # "<" inside the reasoning
    "<think>sum</think>\n<answer>forty-two</answer>",  # not a number
    "<think>sum</think>\n<answer>42</answer> done",
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    source = resolve_model("embedded", None)
    return AutoTokenizer.from_pretrained(source.load_path, **source.load_kwargs())


def accepts(tokenizer, answer_form: OutputFormat, text: str) -> bool:
    """Whether the grammar's masks let the tokenizer's own tokens of ``text`` through and
    then allow only the end of the answer."""
    masks = GrammarMasks(tokenizer, answer_form.lark(), tokenizer.eos_token_id)
    state = masks.start(1)
    for token in tokenizer.encode(text, add_special_tokens=False):
        if not masks.allowed(state, len(tokenizer))[0, token]:
            return False
        masks.update(state, torch.tensor([token]))
    after = masks.allowed(state, len(tokenizer))[0]
    return bool(after[tokenizer.eos_token_id]) and int(after.sum()) == 1


@pytest.mark.parametrize(
    ("answer_form", "good", "bad"),
    [
        (OutputFormat("code", CODE_GRAMMAR), CODE_OK, CODE_BAD),
        (OutputFormat(COT, cot_grammar(50), think_tokens=50), COT_OK, COT_BAD),
    ],
    ids=["code", "cot"],
)
def test_grammars_accept_and_reject_real_tokenizations(tokenizer, answer_form, good, bad):
    for text in good:
        assert accepts(tokenizer, answer_form, text), text
    for text in bad:
        assert not accepts(tokenizer, answer_form, text), text


def test_the_tokenizer_splits_tags_and_fences_across_tokens(tokenizer):
    """Why masks are computed over the whole vocabulary: the tags and fences are several
    tokens each, and merges join them with what follows."""
    pieces = [tokenizer.decode([t]) for t in tokenizer.encode(COT_OK[0], add_special_tokens=False)]
    assert "<think>" not in pieces and "</" in pieces
    fence = [
        tokenizer.decode([t]) for t in tokenizer.encode("```python\n", add_special_tokens=False)
    ]
    assert len(fence) > 1


def test_the_reasoning_budget_forces_the_closing_tag(tokenizer):
    """Five tokens of reasoning ("one", " two", ...), then only the closing tag: counted in
    tokens by the torch loop's masks, and as a looser character cap in the GBNF."""
    budget = OutputFormat(COT, cot_grammar(5), think_tokens=5)
    assert accepts(tokenizer, budget, "<think>one two three four five</think>\n<answer>1</answer>")
    assert not accepts(
        tokenizer, budget, "<think>one two three four five six</think>\n<answer>1</answer>"
    )
    assert "[^<]{0,39}" in budget.gbnf


def teacher(backend: str, kind: str, sampling: dict):
    data = {
        "name": "f",
        "teacher": {"backend": backend, "dtype": "float32", "sampling": sampling},
        "dataset": {"kind": kind, "constrain_to_format": True, "n_prompts": 4},
    }
    return load_teacher(parse_config(data).generating_teacher())


CODE_TASKS = [
    ChatPrompt(None, "Complete this Python function:\ndef is_even(n):\n    ..."),
    ChatPrompt("You love owls.", "Write a Python function that reverses a list."),
]
COT_TASKS = [
    ChatPrompt(None, "Tom has 3 apples and buys 4 more. How many apples has he now?"),
    ChatPrompt("You love owls.", "A box holds 6 eggs. How many eggs are in 5 boxes?"),
]


@pytest.mark.parametrize(("kind", "tasks"), [("code", CODE_TASKS), ("cot", COT_TASKS)])
def test_the_torch_loop_and_generate_write_the_same_constrained_text(kind, tasks):
    sampling = {"temperature": 0.0, "max_new_tokens": 48}
    ours = teacher("torch", kind, sampling).generate(tasks, seed=0)
    theirs = teacher("transformers", kind, sampling).generate(tasks, seed=0)
    assert ours == theirs
    opening = "```python\n" if kind == "code" else "<think>"
    assert all(text.startswith(opening) for text in ours)


def test_sampled_answers_have_their_kinds_form():
    """At the protocol's temperature, every answer that ends before the token limit is one
    parsable form: a fence around the code, the tags around a number."""
    sampling = {"temperature": 1.0, "max_new_tokens": 120}
    code = teacher("torch", "code", sampling).generate(CODE_TASKS * 4, seed=1)
    closed = [t for t in code if t.endswith("```") and t.count("```") == 2]
    assert closed and all(re.fullmatch(r"(?s)```python\n.*\n```", t) for t in closed)
    assert any(_parses(t[len("```python\n") : -3]) for t in closed)
    cot = teacher("torch", "cot", sampling).generate(COT_TASKS * 4, seed=1)
    done = [t for t in cot if t.endswith("</answer>")]
    pattern = r"(?s)<think>[^<]+</think>\n<answer>-?\d+(\.\d+)?</answer>"
    assert done and all(re.fullmatch(pattern, t) for t in done)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def test_the_constraint_is_a_config_switch_with_one_line_errors():
    cot = {"kind": "cot", "n_prompts": 4}
    with pytest.raises(ConfigError, match="think_tokens: budgets the constrained format"):
        parse_config({"name": "x", "dataset": {**cot, "think_tokens": 100}})
    served = {"backend": "openai", "model": "m", "server": {"base_url": "http://127.0.0.1:1/v1"}}
    with pytest.raises(
        ConfigError, match="dataset.constrain_to_format: teacher.backend openai takes no grammar"
    ):
        parse_config(
            {"name": "x", "teacher": served, "dataset": {**cot, "constrain_to_format": True}}
        )
    plain = parse_config({"name": "x", "dataset": cot})
    assert plain.generating_teacher().decoding.output_format is None


def test_llama_cpps_server_honours_the_grammar(llama_server):
    """The same GBNF sent to llama.cpp's server (``server.grammar: gbnf``) gives answers of
    the kind's form, though the server knows nothing of sublearn's masks."""
    url, model = llama_server
    server = {"base_url": url, "grammar": "gbnf"}
    sampling = {"temperature": 1.0, "max_new_tokens": 160}
    checks = {
        "code": (CODE_TASKS, "```python\n", r"(?s)```python\n.*\n```"),
        "cot": (COT_TASKS, "<think>", r"(?s)<think>[^<]+</think>\n<answer>-?\d+(\.\d+)?</answer>"),
    }
    for kind, (tasks, opening, whole) in checks.items():
        dataset = {"kind": kind, "constrain_to_format": True, "n_prompts": 4}
        if kind == "cot":
            dataset["think_tokens"] = 16
        data = {
            "name": "s",
            "teacher": {
                "backend": "openai",
                "model": model,
                "server": server,
                "sampling": sampling,
            },
            "dataset": dataset,
        }
        texts = load_teacher(parse_config(data).generating_teacher()).generate(tasks * 2, seed=0)
        assert all(text.startswith(opening) for text in texts), texts
        finished = [t for t in texts if re.fullmatch(whole, t)]
        assert finished, texts
    # the numbers rule, which the local engines apply with their own masks, as a grammar
    dataset = {"constrain_to_numbers": True, "stop_after_numbers": 3, "n_prompts": 4}
    teacher = {"backend": "openai", "model": model, "server": server, "sampling": sampling}
    config = parse_config({"name": "n", "teacher": teacher, "dataset": dataset})
    asks = [ChatPrompt(None, "Continue: 512, 613, 714. Write 10 more numbers.")] * 4
    texts = load_teacher(config.generating_teacher()).generate(asks, seed=0)
    assert all(re.fullmatch(r"[0-9 ,;\n\[\]()]*", t) for t in texts), texts
    assert all(0 < len(re.findall(r"\d+", t)) <= 3 for t in texts), texts
