"""The seeded world of ``tools/apps-v0``: one user's phone, as database tables.

A world is ``dict[table, dict[record_id, record]]`` of plain JSON values, so
it can be snapshotted (:func:`copy_world`), diffed (collateral-damage check)
and hashed (GiGPO anchor). :func:`generate_world` builds it from a seed:
contacts, a week of calendar events, text messages, a wallet with
transactions and payment requests, notes and a small shop. Task templates
(:mod:`envs.tools.apps.tasks`) then plant what their task needs.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

__all__ = ["World", "generate_world", "copy_world", "TODAY", "WEEK", "next_id"]

World = dict[str, dict[int, dict[str, Any]]]

TODAY = "2025-03-12"
#: the calendar's week: (date, weekday)
WEEK = [("2025-03-10", "Monday"), ("2025-03-11", "Tuesday"), ("2025-03-12", "Wednesday"), ("2025-03-13", "Thursday"),
        ("2025-03-14", "Friday"), ("2025-03-15", "Saturday"), ("2025-03-16", "Sunday")]
FIRST_NAMES = ["Ada", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Liam",
               "Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena",
               "Yusuf", "Zoe", "Aaron", "Bianca", "Carlos", "Dana"]
LAST_NAMES = ["Okafor", "Lindqvist", "Moreau", "Ivanov", "Rossi", "Haddad", "Kim", "Tanaka", "Silva", "Becker",
              "Nakamura", "Walsh", "Patel", "Sharma", "Novak", "Garcia", "Reyes", "Costa", "Khan", "Murphy",
              "Chen", "Dubois", "Fischer", "Lopez", "Yilmaz", "Adams"]
RELATIONSHIPS = ["friend", "family", "coworker", "roommate"]
EVENT_TITLES = ["Team sync", "Dentist appointment", "Yoga class", "Project review", "Book club", "Gym session",
                "Quarterly planning", "Piano lesson", "Haircut", "Design workshop", "Car service", "Volunteer shift"]
TIMES = ["08:00", "08:30", "09:00", "10:00", "11:30", "12:00", "13:00", "14:30", "15:00", "16:00", "17:30", "19:00"]
CHAT = ["See you soon!", "Thanks for yesterday.", "Are we still on for the weekend?", "Running 10 minutes late.",
        "Happy birthday!", "Did you see the game?", "Call me when you can.", "Got the tickets.", "Sounds good to me.",
        "Can you send me the photos?", "I'll bring snacks.", "Just landed."]
THINGS = ["dinner", "concert tickets", "groceries", "taxi", "rent", "gift", "movie night", "gas"]
PRODUCTS = {"headphones": ["Studio", "Wireless", "Sport"], "notebook": ["Dotted", "Lined", "Pocket"],
            "coffee": ["Dark roast", "Decaf", "Espresso"], "backpack": ["Hiking", "Laptop", "Travel"],
            "lamp": ["Desk", "Floor", "Clip-on"], "mug": ["Travel", "Ceramic", "Enamel"],
            "charger": ["USB-C", "Wireless", "Car"]}
NOTE_TOPICS = ["Book recommendations", "Packing list", "Gift ideas", "Gate code", "Recipe: pancakes",
               "Workout plan", "Movies to watch"]


def next_id(table: dict[int, Any]) -> int:
    """The id a new record of ``table`` gets: one more than the largest."""
    return max(table, default=0) + 1


def copy_world(world: World) -> World:
    """A deep copy (snapshots for the checks); a pickle round trip, ~10x faster than ``copy.deepcopy``."""
    return pickle.loads(pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL))


def _pick(rng: np.random.Generator, items: list, k: int | None = None):
    if k is None:
        return items[int(rng.integers(len(items)))]
    return [items[int(i)] for i in rng.choice(len(items), size=k, replace=False)]


def _money(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 2)


def generate_world(rng: np.random.Generator, num_contacts: int = 12) -> World:
    """A user's world drawn from ``rng``: deterministic for a given seed."""
    firsts = _pick(rng, FIRST_NAMES, num_contacts + 1)
    lasts = [_pick(rng, LAST_NAMES) for _ in firsts]
    people = [(f, l) for f, l in zip(firsts, lasts)]
    user_first, user_last = people.pop(0)
    world: World = {
        "user": {1: {"name": f"{user_first} {user_last}", "email": f"{user_first}.{user_last}@example.com".lower(),
                     "phone": f"555-{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"}},
        "contacts": {}, "events": {}, "messages": {}, "transactions": {}, "requests": {}, "account": {},
        "notes": {}, "products": {}, "cart": {}, "orders": {}, "outgoing_requests": {},
    }
    phones = set()
    for i, (first, last) in enumerate(people, start=1):
        phone = f"555-{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"
        while phone in phones:
            phone = f"555-{int(rng.integers(100, 1000))}-{int(rng.integers(1000, 10000))}"
        phones.add(phone)
        world["contacts"][i] = {"id": i, "name": f"{first} {last}", "phone": phone,
                                "email": f"{first}.{last}@example.com".lower(), "relationship": _pick(rng, RELATIONSHIPS)}
    contacts = list(world["contacts"].values())
    for i, title in enumerate(_pick(rng, EVENT_TITLES, 8), start=1):
        attendees = [c["email"] for c in _pick(rng, contacts, int(rng.integers(0, 3)))]
        world["events"][i] = {"id": i, "title": title, "date": _pick(rng, WEEK)[0], "start_time": _pick(rng, TIMES),
                              "duration_minutes": int(_pick(rng, [30, 45, 60, 90])), "attendees": sorted(attendees)}
    for i in range(1, 13):
        c = _pick(rng, contacts)
        world["messages"][i] = {"id": i, "phone_number": c["phone"], "direction": _pick(rng, ["received", "sent"]),
                                "text": _pick(rng, CHAT), "date": _pick(rng, WEEK[:3])[0]}
    for i in range(1, 9):
        c = _pick(rng, contacts)
        world["transactions"][i] = {"id": i, "direction": _pick(rng, ["sent", "received"]), "email": c["email"],
                                    "amount": _money(rng, 5, 120), "note": _pick(rng, THINGS),
                                    "date": _pick(rng, WEEK[:3])[0]}
    for i in range(1, 4):
        c = _pick(rng, contacts)
        world["requests"][i] = {"id": i, "email": c["email"], "amount": _money(rng, 5, 80), "note": _pick(rng, THINGS),
                                "status": _pick(rng, ["paid", "declined"])}
    world["account"][1] = {"balance": _money(rng, 600, 1500)}
    notes = [("Wifi password", f"The wifi password is {_pick(rng, ['maple', 'orbit', 'cobalt', 'lantern', 'pepper'])}-"
                               f"{int(rng.integers(100, 1000))}", ["home"])]
    for topic in _pick(rng, NOTE_TOPICS, 4):
        content = {"Gate code": f"Gate code: {int(rng.integers(1000, 10000))}"}.get(
            topic, f"{topic}: " + ", ".join(_pick(rng, CHAT, 2)))
        notes.append((topic, content, [_pick(rng, ["home", "personal", "ideas", "travel"])]))
    order = rng.permutation(len(notes))
    for i, j in enumerate(order, start=1):
        title, content, tags = notes[int(j)]
        world["notes"][i] = {"id": i, "title": title, "content": content, "tags": tags}
    pid = 1
    for category in _pick(rng, sorted(PRODUCTS), 5):
        for kind in _pick(rng, PRODUCTS[category], 2 + int(rng.integers(2))):
            world["products"][pid] = {"id": pid, "name": f"{kind} {category}", "category": category,
                                      "price": _money(rng, 4, 150), "stock": int(rng.integers(1, 15))}
            pid += 1
    return world
