"""A faster drop-in for TextWorld's ``PddlEnv`` on ALFWorld games (same observations, commands, rewards).

TextWorld's PDDL engine spends most of a reset and a step redoing work whose
result cannot change:

* every ``PddlState`` translates the PDDL problem to SAS **twice** (Fast
  Downward's Python translator: once plain, once optimized for re-planning),
  and ``PddlEnv`` builds one ``PddlState`` in ``load`` and another in ``reset``,
  so a reset of a new task translates four times and every reset twice;
* ``load`` parses the game's whole TextWorld grammar with TatSu again;
* every step derives each admissible command's text from its template through
  the grammar: a TatSu parse of the template, a deep copy of the context, a
  query over the state's facts, per command (~50 of them), plus a list of all
  the state's facts built per command.

:class:`FastPddlEnv` keeps the engine (Fast Downward's library for the state,
the applicable operators, the goal test and the planner; TextWorld's grammar
for the feedback) and caches only pure functions of their inputs:

* the SAS translations and initial facts, per (domain, problem) text;
* the parsed game logic (actions and grammar), per (domain, grammar) text;
* the TatSu parses of grammar strings and condition queries, per string;
* a command's text, per (template, the operator arguments it reads, the
  state's facts of the predicates it queries, directly or through grammar
  rules), per loaded game (the entity names are fixed once a game is loaded and
  demangled); a template whose dependencies cannot be told is derived every time;
* the planner's plan, per library state (Fast Downward's ``replan`` is a
  deterministic search from the library's current state);
* the planner's translation is made and loaded only when ``policy_commands``
  (or the walkthrough extra) is requested: the library only stores it for
  ``replan``.

The grammar derivation itself is TextWorld's, with the symbol contexts copied
as fresh dicts of the same (never mutated) entity infos instead of deep copies.

Everything else is TextWorld's code path, line for line: ``_gather_infos``,
``reset`` and ``step`` below mirror ``textworld.envs.pddl.PddlEnv``
(textworld 1.6) with only the cached calls swapped in.
``tests/envs/alfworld/test_alfworld_fast.py`` replays random action sequences
through both and checks every observation, command list, reward and expert
action are the same.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections import Counter, OrderedDict, defaultdict
from typing import Any

import fast_downward
from textworld.core import GameState
from textworld.envs import PddlEnv
from textworld.envs.pddl import logic as pddl_logic
from textworld.envs.pddl import textgen
from textworld.envs.pddl.logic import model as pddl_model
from textworld.envs.pddl.textgen import (ConditionalSymbol, ContextSensitiveGrammar, CSGUnknownSymbolError, EvalSymbol,
                                         ListSymbol, NonterminalSymbol, ProductionRule, TerminalSymbol)
from textworld.logic import Proposition, Rule, Type, TypeHierarchy, Variable
from textworld.utils import check_flag

__all__ = ["FastPddlEnv", "clear_caches"]


class _LRU(OrderedDict):
    def __init__(self, maxsize: int):
        super().__init__()
        self.maxsize = maxsize

    def get_or(self, key, make):
        try:
            self.move_to_end(key)
            return self[key]
        except KeyError:
            value = self[key] = make()
            if len(self) > self.maxsize:
                self.popitem(last=False)
            return value


_TRANSLATIONS = _LRU(128)  # (domain, problem) -> _Translation
_LOGICS = _LRU(64)  # (domain, grammar) -> GameLogic with a _FastGrammar
_SYMBOLS = _LRU(4096)  # grammar string -> parsed symbols (copied on use)
_QUERIES: dict[str, Rule] = {}  # conjunctive query string -> Rule


def clear_caches() -> None:
    """Forget every cached translation, logic and parse."""
    _TRANSLATIONS.clear()
    _LOGICS.clear()
    _SYMBOLS.clear()
    _QUERIES.clear()


def _copy_context(context):
    """``textgen.copy_context`` without deep-copying the entity infos and variables.

    The derivation only rebinds keys of ``variables`` and ``mapping``; it never mutates the
    ``EntityInfo``/``Variable`` objects they hold, so fresh dicts of the same objects are equivalent.
    """
    return {
        "state": context["state"],
        "facts": context["facts"],
        "variables": dict(context["variables"]),
        "mapping": dict(context["mapping"]),
        "entity_infos": context["entity_infos"],
    }


class _EvalSymbol(EvalSymbol):
    def copy(self, context):
        copy = _shallow(self)
        copy.context = _copy_context(context)
        return copy


class _NonterminalSymbol(NonterminalSymbol):
    def copy(self, context):
        copy = _shallow(self)
        copy.context = _copy_context(context)
        return copy


class _ConditionalSymbol(ConditionalSymbol):
    def derive(self):  # ConditionalSymbol.derive, with the query parse cached and light context copies
        if len(self.context) == 0:
            raise ValueError("Empty context")
        context = _copy_context(self.context)
        contexts = [context]
        if self.given:
            contexts = _query_contexts(self.given, context)
        return [self.expression.copy(context) for context in contexts]


def _query_contexts(expression, context):  # textgen.query, with the parse cached and light context copies
    rule = _query(expression)
    contexts = []
    for mapping in context["state"].all_assignments(rule, context["mapping"]):
        context_ = _copy_context(context)
        new_variables = {ph.name: context_["entity_infos"][var.name] for ph, var in mapping.items()}
        context_["variables"].update(new_variables)
        context_["mapping"].update(mapping)
        contexts.append(context_)
    return contexts


_FAST_CLASSES = {ConditionalSymbol: _ConditionalSymbol, EvalSymbol: _EvalSymbol, NonterminalSymbol: _NonterminalSymbol}


def _speed_up(symbols) -> list:
    """Switch parsed symbols (in place, recursively) to the subclasses above."""
    for symbol in symbols:
        symbol.__class__ = _FAST_CLASSES.get(type(symbol), type(symbol))
        if isinstance(symbol, ListSymbol):
            _speed_up([symbol.symbol])
        elif isinstance(symbol, ConditionalSymbol):
            _speed_up([symbol.expression])
    return symbols


def _shallow(symbol):
    copy = object.__new__(type(symbol))
    copy.__dict__.update(symbol.__dict__)
    return copy


def _fresh(symbol):
    """A copy of a parsed symbol that its derivation may set contexts on (``deepcopy`` of one, cheaper).

    A derivation sets ``context`` on the symbol itself and, for a list, on the symbol it holds; strings
    and a conditional's expression (only ever ``.copy()``-ed) are shared.
    """
    copy = _shallow(symbol)
    copy.context = {}
    if isinstance(symbol, ListSymbol):
        copy.symbol = _fresh(symbol.symbol)
    return copy


def _parsed(text: str) -> list:
    """``textgen._parse_and_convert(text, rule_name="symbols")``, parsed once per string (never mutate it)."""
    return _SYMBOLS.get_or(text, lambda: _speed_up(textgen._parse_and_convert(text, rule_name="symbols")))


def _symbols(text: str) -> list:
    """A fresh copy of the parse of ``text``, for one derivation."""
    return [_fresh(symbol) for symbol in _parsed(text)]


def _query(expr: str) -> Rule:
    rule = _QUERIES.get(expr)
    if rule is None:
        rule = _QUERIES[expr] = Rule.parse_conjunctive_query(expr)
    return rule


class _FastGrammar(ContextSensitiveGrammar):
    """TextWorld's grammar with its TatSu parses done once per string and light context copies."""

    def replace(self, start):  # ContextSensitiveGrammar.replace, with the condition parse cached
        rules = self._rules.get(str(start))
        if not rules:
            raise CSGUnknownSymbolError(start)

        def _applicable(rule):
            if not rule.condition:
                return True
            rule = _query(rule.condition)
            mappings = list(start.context["state"].all_assignments(rule, start.context["mapping"]))
            return len(mappings) > 0

        rules = list(filter(_applicable, rules))
        symbols = [_fresh(symbol) for symbol in rules[0].rhs]
        for symbol in symbols:
            symbol.context = _copy_context(start.context)
        return symbols

    def derive(self, start: str, context={}) -> str:  # ContextSensitiveGrammar.derive, with the parse cached
        if check_flag("TW_CSG_TRACE") or check_flag("TW_CSG_DEBUG"):
            return super().derive(start, context)
        derivation = _symbols(start)[::-1]
        for symbol in derivation:
            symbol.context = _copy_context(context)
        derived = []
        while len(derivation) > 0:
            symbol = derivation.pop()
            if isinstance(symbol, TerminalSymbol):
                derived.append(symbol)
            elif isinstance(symbol, NonterminalSymbol):
                derivation += self.replace(symbol)[::-1]
            elif isinstance(symbol, (ConditionalSymbol, EvalSymbol, ListSymbol)):
                derivation += symbol.derive()[::-1]
            else:
                raise NotImplementedError("Unknown symbol: {}".format(type(symbol)))
        return "".join(map(str, derived))


class _Converter(pddl_logic._ModelConverter):
    def walk_PddlDocumentNode(self, node):  # _ModelConverter's, with each rule's right-hand side parsed once
        actions = {}
        grammar = {}
        for part in node.parts:
            if isinstance(part, pddl_model.ActionTypeNode):
                action = self.walk(part)
                actions[action.name.lower()] = action
                grammar_data = "\n".join(line for line in action.grammar.split("\n")
                                         if not line.lstrip().startswith("#"))
                grammar.update(json.loads(grammar_data))
            elif isinstance(part, pddl_model.ActionGrammarNode):
                grammar.update(json.loads(self._unescape_block(part.code)))
        csg = _FastGrammar()  # ContextSensitiveGrammar.parse(json.dumps(grammar)), parses cached
        for name, rules in json.loads(json.dumps(grammar)).items():
            for rule in rules:
                # rules' symbols are never mutated (derivations work on _fresh copies): share the parse
                csg.add_rule(ProductionRule(lhs=name, rhs=list(_parsed(rule["rhs"])), weight=rule.get("weight", 1),
                                            condition=rule.get("condition", "")))
        return actions, csg


def _logic(domain: str, grammar: str) -> pddl_logic.GameLogic:
    """``GameLogic(domain, grammar)`` (one per text), on a :class:`_FastGrammar`."""

    def make():
        logic = object.__new__(pddl_logic.GameLogic)  # GameLogic.__init__, with the converter above
        logic.domain = domain
        logic.grammar = _FastGrammar()
        logic.actions = {}
        logic.types = TypeHierarchy()
        actions, csg = _Converter().walk(pddl_logic._PARSER.parse(grammar, rule_name="pddlStart"))
        logic.actions.update(actions)
        logic.grammar.update(csg)
        return logic

    return _LOGICS.get_or((domain, grammar), make)


class _Translation:
    """What ``PddlState.__init__`` computes from the domain and problem text alone."""

    def __init__(self, domain: str, problem: str):
        self.domain, self.problem = domain, problem
        self.task, self.sas = fast_downward.pddl2sas(domain, problem, verbose=check_flag("TW_PDDL_DEBUG"))
        self._sas_replan = None
        self.actions = {a.name: a for a in self.task.actions}
        self.name2type = {o.name: o.type_name for o in self.task.objects}
        name2type = self.name2type

        def _atom2proposition(atom):  # PddlState.__init__'s
            if isinstance(atom, fast_downward.translate.pddl.conditions.Atom):
                if atom.predicate == "=":
                    return None
                return Proposition(atom.predicate, [Variable(arg, name2type[arg]) for arg in atom.args])
            elif isinstance(atom, fast_downward.translate.pddl.f_expression.Assign):
                if atom.fluent.symbol == "total-cost":
                    return None
                name = "{}".format(atom.expression.value)
                if str.isdigit(name):
                    return None
                return Proposition(name, [Variable(arg, name2type[arg]) for arg in atom.fluent.args])

        self.init_facts = [f for f in map(_atom2proposition, self.task.init) if f]
        self.state_facts = None  # the library's initial state, read on the first load
        self.plans = _LRU(1024)  # digest of the library's state -> the planner's plan (operator names)

    @property
    def sas_replan(self) -> str:
        """The planner's (optimized) translation, made on first use: only the planner reads it."""
        if self._sas_replan is None:
            _, self._sas_replan = fast_downward.pddl2sas(self.domain, self.problem, verbose=check_flag("TW_PDDL_DEBUG"),
                                                         optimize=True)
        return self._sas_replan


class _FastPddlState(pddl_logic.PddlState):
    """``PddlState`` built from a cached translation (same facts, same library state).

    With ``planner=False`` the planner's translation is neither made nor loaded (``replan`` then raises):
    the env asks for it only when ``policy_commands`` or the walkthrough extra is requested.
    """

    def __init__(self, downward_lib, pddl_problem: str, logic: pddl_logic.GameLogic, translation: _Translation,
                 planner: bool = True):
        self._facts = defaultdict(set)
        self._vars_by_name = {}
        self._vars_by_type = defaultdict(set)
        self._var_counts = Counter()
        self._logic = logic
        self.downward_lib = downward_lib
        self.pddl_problem = pddl_problem
        self.task, self.sas = translation.task, translation.sas
        self.sas_replan = translation.sas_replan if planner else None
        self._actions = translation.actions
        for type_ in self.task.types:
            try:
                self._logic.types.add(Type(type_.name, type_.supertype_names))
            except ValueError:
                pass
        self.downward_lib.load_sas(self.sas.encode("utf-8"))
        if planner:
            self.downward_lib.load_sas_replan(self.sas_replan.encode("utf-8"))
        self.name2type = translation.name2type
        self._translation = translation
        self._plans_by_id: dict[int, tuple[str, ...]] = {}  # the library's state ids are per load_sas
        self.add_facts(translation.init_facts)
        if translation.state_facts is None:
            state_size = self.downward_lib.get_state_size()
            atoms = (pddl_logic.Atom * state_size)()
            self.downward_lib.get_state(atoms)
            facts = [atom.get_fact(self.name2type) for atom in atoms]
            translation.state_facts = [fact for fact in facts if not fact.is_negation]
        self.add_facts(translation.state_facts)

    def replan(self, infos):
        """``PddlState.replan``, with the plan looked up by the library's current state.

        Fast Downward's ``replan`` is a deterministic search (lazy greedy, g evaluator, no random
        successors) from the library's current state over the planner's translation, so its plan is a
        function of that state: it is computed once per state (per state id within a load, per state's
        atoms across loads) and mapped to commands as ``PddlState.replan`` does.
        """
        if self.sas_replan is None:
            raise RuntimeError("the planner was not loaded: request policy_commands (or the walkthrough extra)")
        state_id = self.downward_lib.get_state_id()
        plan = self._plans_by_id.get(state_id)
        if plan is None:
            state_size = self.downward_lib.get_state_size()
            atoms = (pddl_logic.Atom * state_size)()
            self.downward_lib.get_state(atoms)
            key = hashlib.blake2b(b"\0".join(atom._name for atom in atoms), digest_size=20).digest()
            plan = self._translation.plans.get_or(key, self._search)
            self._plans_by_id[state_id] = plan
        if not plan:
            return []
        return self.plan_to_templated_actions(list(plan), infos)

    def _search(self) -> tuple[str, ...]:
        if not self.downward_lib.replan(check_flag("TW_PDDL_DEBUG")):
            return ()
        operators = (fast_downward.Operator * self.downward_lib.get_last_plan_length())()
        self.downward_lib.get_last_plan(operators)
        return tuple(op.name for op in operators)


def _eval_names(expression: str) -> set[str] | None:
    """Names an ``EvalSymbol`` expression reads, or None if it is not a Python expression."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _derivation_deps(symbols, rules, bound) -> tuple[frozenset[str], frozenset[str] | None] | None:
    """What deriving ``symbols`` can read besides the (fixed) entity infos and grammar.

    Returns (predicate names whose facts it queries, names of the action's placeholders it reads, or None
    for all of them), or None if that cannot be told (the command is then derived every time). ``bound`` are
    the action's placeholders: a query whose placeholders are all bound finds the same matches whatever the
    other placeholders hold; one with a free placeholder also depends on them (TextWorld keeps the new
    variables distinct from every bound one), so then the whole mapping counts.
    """
    preds: set[str] = set()
    names: set[str] | None = set()
    seen_rules: set[str] = set()
    stack = list(symbols)

    def use_query(expr):
        nonlocal names
        rule = _query(expr)
        preds.update(p.name for p in rule.preconditions)
        placeholders = rule.placeholders
        if names is not None:
            if all(ph in bound for ph in placeholders):
                names.update(ph.name for ph in placeholders)
            else:
                names = None

    while stack:
        symbol = stack.pop()
        if isinstance(symbol, TerminalSymbol):
            continue
        if isinstance(symbol, EvalSymbol):
            read = _eval_names(symbol.expression)
            if read is None:
                return None
            if names is not None:
                names.update(read)
        elif isinstance(symbol, ListSymbol):
            stack.append(symbol.symbol)
            # display_list adds these rules' symbols
            stack += [NonterminalSymbol(n) for n in ("list_empty", "list_separator", "list_last_separator")]
        elif isinstance(symbol, ConditionalSymbol):
            stack.append(symbol.expression)
            if symbol.given:
                use_query(symbol.given)
        elif isinstance(symbol, NonterminalSymbol):
            name = str(symbol)
            if name in seen_rules:
                continue
            seen_rules.add(name)
            for rule in rules.get(name, ()):
                if rule.condition:
                    use_query(rule.condition)
                stack += rule.rhs
        else:
            return None
    return frozenset(preds), (None if names is None else frozenset(names))


class FastPddlEnv(PddlEnv):
    """``textworld.envs.PddlEnv`` with the pure parts of load, reset and step cached (see the module doc)."""

    def load(self, filename_or_data) -> None:
        try:
            with open(filename_or_data) as f:
                data = json.load(f)
            self._game_file = filename_or_data
        except TypeError:
            data = filename_or_data
            self._game_file = None
        self._game_data = data
        self.walkthrough = data.get("walkthrough", None)
        self._logic = _logic(data["pddl_domain"], data["grammar"])
        self._translation = _TRANSLATIONS.get_or((data["pddl_domain"], data["pddl_problem"]),
                                                 lambda: _Translation(data["pddl_domain"], data["pddl_problem"]))
        self._pddl_state = self._new_state()
        self._entity_infos = self._get_entity_infos()
        self._commands: dict[Any, str] = {}  # per loaded game: entity names are fixed from here on
        self._templates: dict[Any, Any] = {}

    def _new_state(self) -> _FastPddlState:
        planner = bool(self.request_infos.policy_commands or "walkthrough" in self.request_infos.extras)
        return _FastPddlState(self.downward_lib, self._game_data["pddl_problem"], self._logic, self._translation,
                              planner)

    def _command_template(self, action) -> str:
        template = action.command_template
        bound = frozenset(action.mapping)
        deps = self._templates.get((template, bound), False)
        if deps is False:
            deps = self._templates[template, bound] = _derivation_deps(_symbols(template), self._logic.grammar._rules,
                                                                       bound)
        if deps is None:
            return self._derive_command(action)
        preds, names = deps
        facts = (frozenset(f for sig, fs in self._pddl_state._facts.items() if sig.name in preds for f in fs)
                 if preds else None)
        key = (template, tuple((ph.name, ph.type, var.name) for ph, var in action.mapping.items()
                               if names is None or ph.name in names), facts)
        text = self._commands.get(key)
        if text is None:
            text = self._commands[key] = self._derive_command(action)
        return text

    def _derive_command(self, action) -> str:
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {ph.name: self._entity_infos[var.name] for ph, var in action.mapping.items()},
            "mapping": action.mapping,
            "entity_infos": self._entity_infos,
        }
        return self._logic.grammar.derive(action.command_template, context)

    def _gather_infos(self):  # PddlEnv._gather_infos, with the command text cached
        self.state["command_templates"] = sorted(set(action.template for action in self._logic.actions.values()))
        self.state["won"] = self._pddl_state.check_goal()
        self.state["lost"] = False
        self.state["_entity_infos"] = dict(self._entity_infos)
        self.state["_facts"] = list(self._pddl_state.facts)
        if self.request_infos.facts:
            self.state["facts"] = list(map(self._get_human_readable_fact, self.state["_facts"]))
        self.state["last_action"] = None
        self.state["_last_action"] = self._last_action
        self.state["_valid_actions"] = list(self._pddl_state.all_applicable_actions())

        mapping = {k: info.name for k, info in self._entity_infos.items()}
        self.state["_valid_commands"] = []
        for action in self.state["_valid_actions"]:
            action.command_template = self._command_template(action)
            self.state["_valid_commands"].append(action.format_command(mapping))
        self.state["admissible_commands"] = sorted(set(self.state["_valid_commands"]))

        if self.request_infos.moves:
            self.state["moves"] = self._moves
        if self.request_infos.policy_commands:
            self.state["policy_commands"] = self._pddl_state.replan(self._entity_infos)

    def reset(self):  # PddlEnv.reset, on a state built from the cached translation
        self._pddl_state = self._new_state()
        self.prev_state = None
        self.state = GameState()
        self._last_action = None
        self._moves = 0
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {},
            "mapping": {},
            "entity_infos": self._entity_infos,
        }
        self.state.feedback = self._logic.grammar.derive("#intro#", context)
        self.state.raw = self.state.feedback
        self._gather_infos()
        if "walkthrough" in self.request_infos.extras:
            self.state["extra.walkthrough"] = self.walkthrough or self._pddl_state.replan(self._entity_infos)
        return self.state
