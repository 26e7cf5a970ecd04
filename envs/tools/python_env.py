"""``tools/python-v0``: solve a generated problem by running Python snippets in a sandbox.

Each task is drawn from one of 12 problem templates (word problems,
primes, string and list puzzles, small CSV data questions, …) with a checkable
answer. Two tools: ``run_python(code)`` runs a snippet in a
:class:`steprl.envs.tools.sandbox.Sandbox` (fresh process each time: nothing
carries over between snippets; OS isolation through bubblewrap unless
``sandbox="hook"``) and returns its output; ``submit_answer(answer)`` ends the
episode. Reward 1 for a correct answer, else 0 (also when the turns
run out). The expert computes the answer with one snippet and submits it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from steprl.envs.tools.env import ToolEnv
from steprl.envs.tools.protocol import Tool, ToolCall
from steprl.envs.tools.sandbox import Sandbox, SandboxLimits

__all__ = ["PythonEnv", "Problem", "PROBLEMS", "make_problem", "answers_match"]

WORDS = ["river", "stone", "cloud", "apple", "table", "music", "light", "green", "ocean", "paper", "tiger", "honey",
         "quiet", "zebra", "lemon", "pixel", "orbit", "maple", "cable", "delta"]
NAMES = ["Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jae", "Kai", "Lea"]
DEPARTMENTS = ["sales", "research", "support", "finance"]


@dataclass
class Problem:
    """One problem: the question, the answer, how to compare, and the expert's snippet."""

    template: str
    question: str
    answer: str
    kind: str  # "int", "money" (2 decimals) or "text"
    expert_code: str


def answers_match(got: Any, expected: str, kind: str) -> bool:
    """``int``: equal integers; ``money``: within 0.005; ``text``: equal up to case, spaces, quotes, final period."""
    text = str(got).strip()
    if kind in ("int", "money"):
        text = text.replace(",", "").replace("$", "").strip().rstrip(".")
        try:
            value = float(text)
        except ValueError:
            return False
        return value == int(expected) if kind == "int" else math.isclose(value, float(expected), abs_tol=0.005)
    norm = lambda s: " ".join(s.casefold().strip().strip("'\"").rstrip(".").split())  # noqa: E731
    return norm(text) == norm(expected)


# -- problem templates ----------------------------------------------------------------------------
def change_due(rng: np.random.Generator) -> Problem:
    who = NAMES[int(rng.integers(len(NAMES)))]
    muffin, cookie = round(float(rng.integers(150, 450)) / 100, 2), round(float(rng.integers(50, 250)) / 100, 2)
    a, b = int(rng.integers(2, 9)), int(rng.integers(2, 13))
    bill = 50 if a * muffin + b * cookie < 50 else 100
    answer = f"{bill - (a * muffin + b * cookie):.2f}"
    return Problem("change_due", f"A bakery sells muffins at ${muffin:.2f} each and cookies at ${cookie:.2f} each. "
                   f"{who} buys {a} muffins and {b} cookies and pays with a ${bill} bill. How much change, in dollars, "
                   f"does {who} get?", answer, "money",
                   f"print(f'{{{bill} - ({a} * {muffin} + {b} * {cookie}):.2f}}')")


def prime_sum(rng: np.random.Generator) -> Problem:
    n = int(rng.integers(1000, 20000))
    sieve = np.ones(n, dtype=bool)
    sieve[:2] = False
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = False
    return Problem("prime_sum", f"What is the sum of all prime numbers below {n}?", str(int(np.nonzero(sieve)[0].sum())),
                   "int", f"n = {n}\nprimes = [p for p in range(2, n) if all(p % d for d in range(2, int(p**0.5) + 1))]\n"
                          "print(sum(primes))")


def _text(rng: np.random.Generator, n: int) -> str:
    return " ".join(WORDS[int(i)] for i in rng.integers(len(WORDS), size=n))


def vowel_count(rng: np.random.Generator) -> Problem:
    text = _text(rng, int(rng.integers(25, 45)))
    return Problem("vowel_count", f'How many vowels (a, e, i, o, u) are in this text?\n"{text}"',
                   str(sum(c in "aeiou" for c in text)), "int", f"text = {text!r}\nprint(sum(c in 'aeiou' for c in text))")


def top_word(rng: np.random.Generator) -> Problem:
    text = _text(rng, int(rng.integers(30, 60)))
    counts = Counter(text.split())
    best = min(counts, key=lambda w: (-counts[w], w))
    return Problem("top_word", "Which word appears most often in this text? If several tie, give the alphabetically "
                   f'first.\n"{text}"', best, "text",
                   f"from collections import Counter\ncounts = Counter({text!r}.split())\n"
                   "print(min(counts, key=lambda w: (-counts[w], w)))")


def _numbers(rng: np.random.Generator, n: int, low: int = -50, high: int = 100) -> list[int]:
    return [int(x) for x in rng.integers(low, high, size=n)]


def kth_smallest(rng: np.random.Generator) -> Problem:
    values = _numbers(rng, int(rng.integers(15, 30)))
    k = int(rng.integers(2, min(8, len(set(values)))))
    return Problem("kth_smallest", f"What is the {k}th smallest distinct value in this list?\n{values}",
                   str(sorted(set(values))[k - 1]), "int", f"values = {values}\nprint(sorted(set(values))[{k} - 1])")


def longest_run(rng: np.random.Generator) -> Problem:
    values = _numbers(rng, int(rng.integers(20, 40)), 0, 30)
    best = run = 1
    for prev, cur in zip(values, values[1:]):
        run = run + 1 if cur > prev else 1
        best = max(best, run)
    code = (f"values = {values}\nbest = run = 1\nfor prev, cur in zip(values, values[1:]):\n"
            "    run = run + 1 if cur > prev else 1\n    best = max(best, run)\nprint(best)")
    return Problem("longest_run", f"How long is the longest strictly increasing run of consecutive elements in this "
                   f"list?\n{values}", str(best), "int", code)


def _table(rng: np.random.Generator) -> tuple[str, list[tuple[str, str, int]]]:
    rows = [(NAMES[i], DEPARTMENTS[int(rng.integers(len(DEPARTMENTS)))], int(rng.integers(30, 120)) * 1000)
            for i in rng.permutation(len(NAMES))[: int(rng.integers(8, 12))]]
    return "name,department,salary\n" + "\n".join(f"{n},{d},{s}" for n, d, s in rows), rows


def department_average(rng: np.random.Generator) -> Problem:
    csv, rows = _table(rng)
    dept = rows[int(rng.integers(len(rows)))][1]
    salaries = [s for _, d, s in rows if d == dept]
    code = (f"import csv, io\nrows = list(csv.DictReader(io.StringIO({csv!r})))\n"
            f"pay = [int(r['salary']) for r in rows if r['department'] == {dept!r}]\nprint(f'{{sum(pay) / len(pay):.2f}}')")
    return Problem("department_average", f"What is the average salary in the {dept} department, rounded to 2 "
                   f"decimals?\n{csv}", f"{sum(salaries) / len(salaries):.2f}", "money", code)


def top_department(rng: np.random.Generator) -> Problem:
    csv, rows = _table(rng)
    totals = Counter()
    for _, d, s in rows:
        totals[d] += s
    best = min(totals, key=lambda d: (-totals[d], d))
    code = (f"import csv, io\nfrom collections import Counter\ntotals = Counter()\n"
            f"for r in csv.DictReader(io.StringIO({csv!r})):\n    totals[r['department']] += int(r['salary'])\n"
            "print(min(totals, key=lambda d: (-totals[d], d)))")
    return Problem("top_department", "Which department has the highest total salary? If several tie, give the "
                   f"alphabetically first.\n{csv}", best, "text", code)


def collatz_steps(rng: np.random.Generator) -> Problem:
    n = int(rng.integers(27, 100_000))
    steps, x = 0, n
    while x != 1:
        x, steps = (x // 2 if x % 2 == 0 else 3 * x + 1), steps + 1
    code = f"x, steps = {n}, 0\nwhile x != 1:\n    x = x // 2 if x % 2 == 0 else 3 * x + 1\n    steps += 1\nprint(steps)"
    return Problem("collatz_steps", f"Starting from {n}, how many steps of the Collatz rule (halve if even, else 3x+1) "
                   "does it take to reach 1?", str(steps), "int", code)


def binary_ones(rng: np.random.Generator) -> Problem:
    a, b = int(rng.integers(10**5, 10**7)), int(rng.integers(10**5, 10**7))
    return Problem("binary_ones", f"How many 1 bits are in the binary representation of {a} * {b}?",
                   str(bin(a * b).count("1")), "int", f"print(bin({a} * {b}).count('1'))")


def compound_interest(rng: np.random.Generator) -> Problem:
    principal, rate, years = int(rng.integers(10, 200)) * 100, int(rng.integers(1, 13)) / 2, int(rng.integers(2, 31))
    value = principal * (1 + rate / 100 / 12) ** (12 * years)
    return Problem("compound_interest", f"${principal} is invested at {rate}% a year, compounded monthly. What is it "
                   f"worth after {years} years, in dollars, rounded to 2 decimals?", f"{value:.2f}", "money",
                   f"print(f'{{{principal} * (1 + {rate} / 100 / 12) ** (12 * {years}):.2f}}')")


def caesar_decode(rng: np.random.Generator) -> Problem:
    plain, shift = _text(rng, int(rng.integers(4, 8))), int(rng.integers(1, 26))
    cipher = "".join(chr((ord(c) - 97 + shift) % 26 + 97) if c.isalpha() else c for c in plain)
    code = (f"cipher, shift = {cipher!r}, {shift}\n"
            "print(''.join(chr((ord(c) - 97 - shift) % 26 + 97) if c.isalpha() else c for c in cipher))")
    return Problem("caesar_decode", f"This text was encrypted with a Caesar cipher that shifts each letter {shift} "
                   f'places forward in the alphabet. Decode it.\n"{cipher}"', plain, "text", code)


#: template name → generator; task seed ``s`` uses template ``s % len(PROBLEMS)``
PROBLEMS: dict[str, Callable[[np.random.Generator], Problem]] = {
    f.__name__: f for f in (change_due, prime_sum, vowel_count, top_word, kth_smallest, longest_run,
                            department_average, top_department, collatz_steps, binary_ones, compound_interest,
                            caesar_decode)
}


def make_problem(task_seed: int, templates: Sequence[str] | None = None) -> Problem:
    """The problem of a task seed (deterministic)."""
    names = list(templates or PROBLEMS)
    return PROBLEMS[names[task_seed % len(names)]](np.random.default_rng(task_seed))


class PythonEnv(ToolEnv):
    """Generated problems solved with a sandboxed Python tool.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        num_tasks: use only the first ``num_tasks`` task seeds of the split.
        max_turns: turns before the episode is cut (reward 0 unless answered).
        templates: restrict to these problem templates (names of :data:`PROBLEMS`).
        timeout: wall-clock seconds per snippet.
        cpu_seconds: CPU seconds per snippet.
        memory_mb: address-space limit per snippet, in MiB.
        sandbox: ``"bwrap"`` (default): snippets run in Linux namespaces through bubblewrap, and the env
            refuses to start (:class:`~steprl.envs.tools.sandbox.SandboxUnavailableError`, saying how to
            enable it) where bwrap cannot run; ``"hook"``: the audit hook and rlimits only, no OS
            isolation (warns once). See ``docs/tools.md``.
    """

    finishing_tools = ("submit_answer",)

    def __init__(self, split: str = "train", num_tasks: int | None = None, max_turns: int = 6,
                 templates: Sequence[str] | None = None, timeout: float = 5.0, cpu_seconds: int = 5,
                 memory_mb: int = 512, max_calls_per_turn: int = 4, render_mode: str | None = None,
                 sandbox: str = "bwrap"):
        super().__init__(split=split, num_tasks=num_tasks, max_turns=max_turns,
                         max_calls_per_turn=max_calls_per_turn, render_mode=render_mode)
        unknown = [t for t in templates or () if t not in PROBLEMS]
        if unknown:
            raise ValueError(f"unknown problem templates {unknown}; choose from {sorted(PROBLEMS)}")
        self.templates = list(templates) if templates else None
        self.sandbox = Sandbox(sandbox, SandboxLimits(timeout=timeout, cpu_seconds=cpu_seconds,
                                                      memory_bytes=memory_mb * 1024**2))
        self.tools = {t.name: t for t in (Tool.from_function(self.run_python), Tool.from_function(self.submit_answer))}
        self.tool_schemas = [t.schema for t in self.tools.values()]
        self.last_run = None

    # -- the tools ------------------------------------------------------------------------------
    def run_python(self, code: str) -> str:
        """Run a Python snippet and return what it printed. Each snippet starts fresh (no state is kept), with the
        standard library only, no network, and time and memory limits; print() the values you need.

        Args:
            code: the Python source to run.
        """
        self.last_run = self.sandbox.run(code)
        return self.last_run.message()

    def submit_answer(self, answer: str | int | float) -> str:
        """Submit the final answer; this ends the episode.

        Args:
            answer: the answer, e.g. "42", "12.50" or a word.
        """
        self.answer = answer
        return "Answer submitted."

    # -- ToolEnv hooks --------------------------------------------------------------------------
    def _load_task(self, task_seed: int) -> None:
        self.problem = make_problem(task_seed, self.templates)
        self.task_text = self.problem.question
        self.plan = [[("run_python", {"code": self.problem.expert_code})], [("submit_answer", {"answer": self.problem.answer})]]

    def _begin(self, rng: np.random.Generator) -> str:
        self.answer = None
        return ("Solve the problem. You can run Python code with run_python (print the results), then give the final "
                "answer with submit_answer.")

    def _anchor_state(self) -> str:
        return self.task_text

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        correct = self.answer is not None and answers_match(self.answer, self.problem.answer, self.problem.kind)
        return float(correct), correct, {"template": self.problem.template, "answer": self.answer,
                                         "expected_answer": self.problem.answer}

    def _finish(self, call: ToolCall) -> Any:
        return self.submit_answer(**call.arguments)

