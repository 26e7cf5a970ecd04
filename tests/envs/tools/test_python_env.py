"""tools/python-v0 and its sandbox: limits, blocked operations, recovery, answers, expert/random bars.

The sandbox tests run under both isolation modes; the OS isolation itself is tested in
``tests/envs/test_sandbox_isolation.py``.
"""

import os
import shutil
import warnings

import pytest

from steprl import envs
from steprl.envs.tools import RandomToolPolicy, format_tool_call
from steprl.envs.tools.python_env import PROBLEMS, answers_match, make_problem
from steprl.envs.tools.sandbox import SandboxLimits, run_snippet
from steprl.evaluation.baselines import ExpertPolicy, run_policy

FAST = SandboxLimits(timeout=2.0, cpu_seconds=1)
HAS_BWRAP = shutil.which("bwrap") is not None
needs_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap (bwrap) is not installed: apt-get install "
                                 "bubblewrap (scripts/install.sh does it as root; CI has it)")
#: both isolation modes: "bwrap" skips (with that reason) where bubblewrap is missing
ISOLATIONS = [pytest.param("bwrap", marks=needs_bwrap), pytest.param("hook", marks=pytest.mark.filterwarnings(
    "ignore:sandbox='hook'"))]


def run(env, code):
    return env.step(format_tool_call("run_python", {"code": code}))


@pytest.fixture
def env():
    # The env's own behaviour (answers, recovery, bad calls) does not depend on the isolation mode; it runs
    # under bwrap where installed (CI) and, explicitly, hook-only elsewhere.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "sandbox='hook'")
        env = envs.make("tools/python-v0", split="test", num_tasks=4, timeout=2.0, cpu_seconds=1,
                        sandbox="bwrap" if HAS_BWRAP else "hook")
    env.reset(seed=0, options={"task": 0})
    return env


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_snippet_output_errors_and_private_dir(isolation):
    code = "import os\nopen('a.txt', 'w').write('hi')\nprint(open('a.txt').read(), sorted(os.listdir('.')))"
    result = run_snippet(code, FAST, isolation=isolation)
    assert (result.status, result.stdout, result.isolation) == ("ok", "hi ['a.txt']\n", isolation)
    result = run_snippet("def f():\n    return 1 / 0\nf()", FAST, isolation=isolation)
    assert result.status == "error" and "ZeroDivisionError" in result.stderr and '<snippet>", line 2' in result.stderr
    assert '"<string>"' not in result.stderr  # the bootstrap's frames are hidden


@pytest.mark.parametrize("name, code, status, says", [
    ("socket", "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)", "blocked", "importing socket"),
    ("write outside", "open('/tmp/steprl-sandbox-escape.txt', 'w').write('x')", "blocked", "outside the working directory"),
    ("remove outside", "import os\nos.remove('/etc/hostname')", "blocked", "os.remove"),
    ("4 GB", "x = bytearray(4 * 1024**3)", "memory_limit", "out of memory"),
    ("fork bomb", "import os\nwhile True:\n    os.fork()", "blocked", "os.fork"),
    ("subprocess", "import subprocess\nsubprocess.run(['ls'])", "blocked", "not allowed"),
    ("os.system", "import os\nos.system('ls')", "blocked", "os.system"),
    ("kill parent", "import os\nos.kill(os.getppid(), 9)", "blocked", "os.kill"),
    ("output flood", "while True:\n    print('x' * 1000)", "output_limit", "more output than allowed"),
])
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_sandbox_stops_forbidden_snippets(isolation, name, code, status, says):
    result = run_snippet(code, FAST, isolation=isolation)
    assert result.status == status, (name, result)
    assert says in result.message(), (name, result.message())
    assert not os.path.exists("/tmp/steprl-sandbox-escape.txt")


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("code", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_sandbox_timeout_kills_the_process_group(code, isolation):
    result = run_snippet(code, SandboxLimits(timeout=1.5, cpu_seconds=1), isolation=isolation)
    assert result.status in ("timeout", "cpu_limit") and result.seconds < 5
    assert "Stopped:" in result.message()


def test_env_recovers_after_a_stopped_snippet(env):
    obs, reward, terminated, truncated, info = run(env, "x = bytearray(4 * 1024**3)")
    assert info["valid_action"] is True and "out of memory" in obs and not terminated
    obs, reward, terminated, truncated, info = run(env, "import socket")
    assert "forbids" in obs
    obs, reward, terminated, truncated, info = run(env, "print(6 * 7)")
    assert obs == '<tool_response>\n{"name": "run_python", "content": "42"}\n</tool_response>'


def test_code_keeps_its_whitespace(env):
    code = "total = 0\nfor i in range(4):\n    if i % 2:\n        total += i\nprint(total)"
    obs, *_ = run(env, code)
    assert '"content": "4"' in obs


def test_answers_and_rewards(env):
    problem = env.unwrapped.problem
    obs, reward, terminated, truncated, info = env.step(format_tool_call("submit_answer", {"answer": "wrong"}))
    assert terminated and reward == 0.0 and info["success"] is False and info["expected_answer"] == problem.answer
    env.reset(seed=0, options={"task": 0})
    obs, reward, terminated, truncated, info = env.step(format_tool_call("submit_answer", {"answer": problem.answer}))
    assert terminated and reward == 1.0 and info["success"] is True
    assert answers_match("$1,234.50", "1234.5", "money") and not answers_match("1234.51", "1234.5", "money")
    assert answers_match(" 42. ", "42", "int") and not answers_match("42.5", "42", "int")
    assert answers_match('"River Stone."', "river stone", "text") and not answers_match("river", "river stone", "text")


def test_bad_calls_are_invalid(env):
    anchor = env.unwrapped._last_info["anchor"]
    for action in ['<tool_call>{"name": "run_python", "arguments": {"code": 5}}</tool_call>',
                   '<tool_call>{"name": "run_python", "arguments": {"source": "print(1)"}}</tool_call>',
                   '<tool_call>{"name": "exec", "arguments": {}}</tool_call>', "print(1)", '<tool_call>{oops</tool_call>']:
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["valid_action"] is False and info["anchor"] == anchor and not terminated, action


def test_templates_and_determinism():
    assert len(PROBLEMS) == 12
    assert {make_problem(s).template for s in range(12)} == set(PROBLEMS)
    assert make_problem(110_007) == make_problem(110_007)


@pytest.mark.slow
@needs_bwrap
def test_expert_solves_all_and_random_none_of_200_test_tasks():
    expert = run_policy("tools/python-v0", ExpertPolicy(), split="test", num_tasks=200, progress=False)
    random = run_policy("tools/python-v0", RandomToolPolicy(seed=0), split="test", num_tasks=200, progress=False)
    print(f"\ntools/python-v0 test 200: {expert.line()}\n{random.line()}")
    assert expert.success_rate == 1.0
    assert random.success_rate <= 0.02
