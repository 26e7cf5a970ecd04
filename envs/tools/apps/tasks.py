"""Task templates of ``tools/apps-v0``: instruction, state-based checks and the expert's plan.

Each template takes a freshly generated world and the task's ``rng``, plants
what it needs (a message asking to be paid back, pending payment requests, …)
and returns a :class:`Task`. The plan is the expert's solution, one list of
``(tool, arguments)`` per turn; it reads before it writes, as an agent must
(the instruction never gives ids, phone numbers or emails the world holds).
Every task gets a :class:`~envs.tools.apps.checks.NoCollateralDamage` check.

| template | apps | calls |
|---|---|---|
| contact_phone | contacts | 2 |
| add_contact | contacts | 2 |
| text_contact | contacts → messages | 3 |
| pay_back | contacts → messages → wallet | 4 |
| schedule_meeting | contacts → calendar | 4 |
| reschedule_event | calendar | 3 |
| cancel_day | calendar | 4–6 |
| count_events | calendar | 2 |
| wifi_password | notes | 3 |
| share_note | notes, contacts → messages | 5 |
| buy_cheapest | shop → wallet | 4 |
| pay_family_requests | wallet, contacts | 5–8 |
| update_email | contacts → messages → contacts | 4 |
| total_sent | contacts → wallet | 3 |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from steprl.envs.tools.apps.checks import Allow, AnswerCheck, Check, DeletedCheck, FieldCheck, NoCollateralDamage, RecordCheck
from steprl.envs.tools.apps.world import FIRST_NAMES, LAST_NAMES, THINGS, TIMES, WEEK, World, next_id

__all__ = ["Task", "TEMPLATES", "make_task"]

Call = tuple[str, dict[str, Any]]
DONE: Call = ("supervisor_complete_task", {})


@dataclass
class Task:
    """One task instance: what to ask, how to grade it, how the expert solves it."""

    template: str
    instruction: str
    checks: list[Check]
    plan: list[list[Call]]


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def _contact(world: World, rng: np.random.Generator) -> dict[str, Any]:
    return _pick(rng, sorted(world["contacts"].values(), key=lambda c: c["id"]))


def _answer(value: str) -> Call:
    return ("supervisor_complete_task", {"answer": value})


def _weekday(date: str) -> str:
    return dict(WEEK)[date]


def _received(world: World, phone: str, text: str) -> None:
    new_id = next_id(world["messages"])
    world["messages"][new_id] = {"id": new_id, "phone_number": phone, "direction": "received", "text": text,
                                 "date": WEEK[2][0]}


# -- templates --------------------------------------------------------------------------
def contact_phone(world: World, rng: np.random.Generator) -> Task:
    c = _contact(world, rng)
    return Task("contact_phone", f"What is {c['name']}'s phone number? Answer with the number.",
                [AnswerCheck(c["phone"]), NoCollateralDamage([])],
                [[("contacts_search", {"query": c["name"]})], [_answer(c["phone"])]])


def add_contact(world: World, rng: np.random.Generator) -> Task:
    taken = {c["name"].split()[0] for c in world["contacts"].values()} | {world["user"][1]["name"].split()[0]}
    first = _pick(rng, [f for f in FIRST_NAMES if f not in taken])
    name = f"{first} {_pick(rng, LAST_NAMES)}"
    phone = f"555-{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"
    email = f"{first.lower()}@{_pick(rng, ['mail.com', 'post.net', 'inbox.org'])}"
    relationship = _pick(rng, ["friend", "family", "coworker", "roommate"])
    fields = {"name": name, "phone": phone, "email": email, "relationship": relationship}
    return Task("add_contact", f"Add {name} to your contacts as a {relationship}: phone {phone}, email {email}.",
                [RecordCheck("contacts", fields), NoCollateralDamage([Allow("contacts", "add", match={"name": name})])],
                [[("contacts_add", fields)], [DONE]])


TEXTS = ["Running late, start without me.", "Can you call me back tonight?", "I left my keys at your place.",
         "Dinner is at 7, see you there.", "The package arrived today.", "Happy anniversary to you both!"]


def text_contact(world: World, rng: np.random.Generator) -> Task:
    c, text = _contact(world, rng), _pick(rng, TEXTS)
    sent = {"phone_number": c["phone"], "direction": "sent", "text": text}
    return Task("text_contact", f'Send {c["name"]} a text message saying: "{text}"',
                [RecordCheck("messages", sent),
                 NoCollateralDamage([Allow("messages", "add", match={"phone_number": c["phone"]})])],
                [[("contacts_search", {"query": c["name"]})], [("messages_send", {"phone_number": c["phone"], "text": text})],
                 [DONE]])


def pay_back(world: World, rng: np.random.Generator) -> Task:
    c, thing = _contact(world, rng), _pick(rng, THINGS)
    amount = round(float(rng.integers(500, 9000)) / 100, 2)
    _received(world, c["phone"], f"Hey! Could you pay me back ${amount:.2f} for the {thing}? Thanks!")
    balance = world["account"][1]["balance"]
    return Task(
        "pay_back",
        f'{c["name"]} texted you asking to be paid back for the {thing}. Send them the amount they asked for with '
        f'the wallet app, with the note "{thing}".',
        [RecordCheck("transactions", {"direction": "sent", "email": c["email"], "amount": amount, "note": thing}),
         FieldCheck("account", 1, "balance", round(balance - amount, 2)),
         NoCollateralDamage([Allow("transactions", "add", match={"email": c["email"]}), Allow("account", "change")])],
        [[("contacts_search", {"query": c["name"]})], [("messages_search", {"phone_number": c["phone"]})],
         [("wallet_send_money", {"email": c["email"], "amount": amount, "note": thing})], [DONE]])


def schedule_meeting(world: World, rng: np.random.Generator) -> Task:
    people = [world["contacts"][int(i)] for i in rng.choice(sorted(world["contacts"]), size=2, replace=False)]
    title = _pick(rng, [f"Coffee with {people[0]['name'].split()[0]}", "Study session", "Board game night",
                        "Brainstorm", "Running club"])
    date, start, minutes = _pick(rng, WEEK[3:])[0], _pick(rng, TIMES), int(_pick(rng, [30, 45, 60, 90]))
    emails = sorted(p["email"] for p in people)
    event = {"title": title, "date": date, "start_time": start, "duration_minutes": minutes, "attendees": emails}
    return Task(
        "schedule_meeting",
        f'Schedule "{title}" on {_weekday(date)} {date} at {start} for {minutes} minutes, and invite '
        f'{people[0]["name"]} and {people[1]["name"]} (attendees are given by email).',
        [RecordCheck("events", event), NoCollateralDamage([Allow("events", "add", match={"title": title})])],
        [[("contacts_search", {"query": p["name"]}) for p in people],
         [("calendar_create_event", {"title": title, "date": date, "start_time": start, "duration_minutes": minutes,
                                     "attendees": emails})], [DONE]])


def reschedule_event(world: World, rng: np.random.Generator) -> Task:
    event = _pick(rng, sorted(world["events"].values(), key=lambda e: e["id"]))
    date = _pick(rng, [d for d, _ in WEEK if d != event["date"]])
    start = _pick(rng, TIMES)
    return Task(
        "reschedule_event",
        f'Move your "{event["title"]}" event to {_weekday(date)} {date} at {start}; keep everything else as it is.',
        [FieldCheck("events", event["id"], "date", date), FieldCheck("events", event["id"], "start_time", start),
         NoCollateralDamage([Allow("events", "change", ids=(event["id"],), fields=("date", "start_time"))])],
        [[("calendar_search_events", {"query": event["title"]})],
         [("calendar_reschedule_event", {"event_id": event["id"], "date": date, "start_time": start})], [DONE]])


def cancel_day(world: World, rng: np.random.Generator) -> Task:
    date = _pick(rng, WEEK)[0]
    taken = {e["title"] for e in world["events"].values()}
    free = [t for t in ["Laundry", "Call plumber", "Team lunch", "Pick up parcel", "Language class"] if t not in taken]
    while sum(e["date"] == date for e in world["events"].values()) < 2:
        new_id = next_id(world["events"])
        world["events"][new_id] = {"id": new_id, "title": free.pop(int(rng.integers(len(free)))), "date": date,
                                   "start_time": _pick(rng, TIMES), "duration_minutes": 60, "attendees": []}
    targets = sorted(e["id"] for e in world["events"].values() if e["date"] == date)
    while len(targets) > 4:  # at most 4 cancellations: move the rest to the next day
        world["events"][targets.pop()]["date"] = WEEK[(dict((d, i) for i, (d, _) in enumerate(WEEK))[date] + 1) % 7][0]
    return Task(
        "cancel_day", f"Cancel every event on your calendar on {_weekday(date)} {date}.",
        [*(DeletedCheck("events", i) for i in targets), NoCollateralDamage([Allow("events", "delete", ids=tuple(targets))])],
        [[("calendar_list_events", {"date": date})], [("calendar_cancel_event", {"event_id": i}) for i in targets], [DONE]])


def count_events(world: World, rng: np.random.Generator) -> Task:
    date = _pick(rng, WEEK)[0]
    count = sum(e["date"] == date for e in world["events"].values())
    return Task("count_events", f"How many events do you have on {_weekday(date)} {date}? Answer with a number.",
                [AnswerCheck(str(count)), NoCollateralDamage([])],
                [[("calendar_list_events", {"date": date})], [_answer(str(count))]])


def wifi_password(world: World, rng: np.random.Generator) -> Task:
    note = next(n for n in world["notes"].values() if n["title"] == "Wifi password")
    password = note["content"].rsplit(" ", 1)[-1]
    return Task("wifi_password", "What is the wifi password? It is written in one of your notes. Answer with the password only.",
                [AnswerCheck(password), NoCollateralDamage([])],
                [[("notes_search", {"query": "wifi"})], [("notes_read", {"note_id": note["id"]})], [_answer(password)]])


def share_note(world: World, rng: np.random.Generator) -> Task:
    note = _pick(rng, sorted((n for n in world["notes"].values() if n["title"] != "Wifi password"), key=lambda n: n["id"]))
    c = _contact(world, rng)
    sent = {"phone_number": c["phone"], "direction": "sent", "text": note["content"]}
    return Task(
        "share_note", f'Text {c["name"]} the exact content of your note titled "{note["title"]}".',
        [RecordCheck("messages", sent), NoCollateralDamage([Allow("messages", "add", match={"phone_number": c["phone"]})])],
        [[("notes_search", {"query": note["title"]})],
         [("notes_read", {"note_id": note["id"]}), ("contacts_search", {"query": c["name"]})],
         [("messages_send", {"phone_number": c["phone"], "text": note["content"]})], [DONE]])


def buy_cheapest(world: World, rng: np.random.Generator) -> Task:
    category = _pick(rng, sorted({p["category"] for p in world["products"].values()}))
    product = min((p for p in world["products"].values() if p["category"] == category), key=lambda p: (p["price"], p["id"]))
    balance = world["account"][1]["balance"]
    return Task(
        "buy_cheapest", f"Buy one unit of the cheapest {category} in the shop, paying with your wallet.",
        [RecordCheck("orders", {"items": [{"product_id": product["id"], "quantity": 1, "price": product["price"]}]}),
         FieldCheck("account", 1, "balance", round(balance - product["price"], 2)),
         FieldCheck("products", product["id"], "stock", product["stock"] - 1),
         NoCollateralDamage([Allow("orders", "add"), Allow("account", "change"),
                             Allow("products", "change", ids=(product["id"],), fields=("stock",))])],
        [[("shop_search_products", {"query": category})], [("shop_add_to_cart", {"product_id": product["id"], "quantity": 1})],
         [("shop_checkout", {})], [DONE]])


def pay_family_requests(world: World, rng: np.random.Generator) -> Task:
    contacts = sorted(world["contacts"].values(), key=lambda c: c["id"])
    if sum(c["relationship"] == "family" for c in contacts) < 1:
        contacts[0]["relationship"] = "family"
    if all(c["relationship"] == "family" for c in contacts):
        contacts[-1]["relationship"] = "friend"
    family = [c for c in contacts if c["relationship"] == "family"]
    others = [c for c in contacts if c["relationship"] != "family"]
    payers = [_pick(rng, family) for _ in range(1 + int(rng.integers(2)))] + [_pick(rng, others) for _ in range(1 + int(rng.integers(2)))]
    balance = world["account"][1]["balance"]
    pay, decline = [], []
    for c in payers:
        new_id = next_id(world["requests"])
        amount = round(float(rng.integers(500, 6000)) / 100, 2)
        world["requests"][new_id] = {"id": new_id, "email": c["email"], "amount": amount, "note": _pick(rng, THINGS),
                                     "status": "pending"}
        if c["relationship"] == "family":
            pay.append(new_id)
            balance -= amount
        else:
            decline.append(new_id)
    ids = tuple(pay + decline)
    return Task(
        "pay_family_requests",
        "Pay every pending payment request that comes from a family member, and decline the pending ones from anyone else.",
        [*(FieldCheck("requests", i, "status", "paid") for i in pay),
         *(FieldCheck("requests", i, "status", "declined") for i in decline),
         FieldCheck("account", 1, "balance", round(balance, 2)),
         NoCollateralDamage([Allow("requests", "change", ids=ids, fields=("status",)), Allow("account", "change"),
                             Allow("transactions", "add")])],
        [[("wallet_list_payment_requests", {"status": "pending"}), ("contacts_search", {"relationship": "family"})],
         [("wallet_pay_request", {"request_id": i}) for i in pay] + [("wallet_decline_request", {"request_id": i}) for i in decline],
         [DONE]])


def update_email(world: World, rng: np.random.Generator) -> Task:
    c = _contact(world, rng)
    first = c["name"].split()[0]
    email = f"{first.lower()}.{_pick(rng, ['new', 'home', 'work', 'mail'])}{int(rng.integers(10, 100))}@{_pick(rng, ['post.net', 'inbox.org'])}"
    _received(world, c["phone"], f"Hi, it's {first}! My new email address is {email} - please update it.")
    return Task(
        "update_email", f"{c['name']} texted you their new email address. Update their contact with it.",
        [FieldCheck("contacts", c["id"], "email", email),
         NoCollateralDamage([Allow("contacts", "change", ids=(c["id"],), fields=("email",))])],
        [[("contacts_search", {"query": c["name"]})], [("messages_search", {"phone_number": c["phone"]})],
         [("contacts_update", {"contact_id": c["id"], "email": email})], [DONE]])


def total_sent(world: World, rng: np.random.Generator) -> Task:
    c = _contact(world, rng)
    for _ in range(1 + int(rng.integers(2))):
        new_id = next_id(world["transactions"])
        world["transactions"][new_id] = {"id": new_id, "direction": "sent", "email": c["email"],
                                         "amount": round(float(rng.integers(300, 9000)) / 100, 2),
                                         "note": _pick(rng, THINGS), "date": WEEK[int(rng.integers(3))][0]}
    total = sum(t["amount"] for t in world["transactions"].values() if t["direction"] == "sent" and t["email"] == c["email"])
    answer = f"{total:.2f}"
    return Task("total_sent", f"How much money have you sent to {c['name']} in total, in dollars? Answer with the number.",
                [AnswerCheck(answer), NoCollateralDamage([])],
                [[("contacts_search", {"query": c["name"]})],
                 [("wallet_list_transactions", {"direction": "sent", "email": c["email"]})], [_answer(answer)]])


#: template name → builder; task seed ``s`` uses template ``s % len(TEMPLATES)`` (all appear in any 14 tasks)
TEMPLATES: dict[str, Callable[[World, np.random.Generator], Task]] = {
    f.__name__: f for f in (contact_phone, add_contact, text_contact, pay_back, schedule_meeting, reschedule_event,
                            cancel_day, count_events, wifi_password, share_note, buy_cheapest, pay_family_requests,
                            update_email, total_sent)
}


def make_task(world: World, rng: np.random.Generator, template: str) -> Task:
    """Plant and build one task of ``template`` in ``world`` (mutated)."""
    return TEMPLATES[template](world, rng)
