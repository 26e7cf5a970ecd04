"""The apps and their APIs: typed, documented methods over a :data:`~envs.tools.apps.world.World`.

Eight apps, 38 APIs. Each API is a method named ``<app>_<api>``; its type
hints and docstring are its schema (:func:`envs.tools.protocol.function_schema`).
``docs_*`` let the agent look the documentation up, as AppWorld's agents do
(Trivedi et al., 2024); ``supervisor_complete_task`` ends the episode.
An API that refuses a call raises :class:`~envs.tools.protocol.ToolError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

from steprl.envs.tools.apps.world import TODAY, World, next_id
from steprl.envs.tools.protocol import Tool, ToolError, function_schema

__all__ = ["Apps", "APPS", "Relationship"]

Relationship = Literal["friend", "family", "coworker", "roommate"]

#: app → one-line description (what ``docs_list_apps`` shows)
APPS = {
    "docs": "Look up the apps and the documentation of their APIs.",
    "supervisor": "Your own profile, and complete_task to finish the task (with the answer, if it asks a question).",
    "contacts": "Your address book: names, phone numbers, emails and relationships.",
    "calendar": "Your calendar events for the week of 2025-03-10 to 2025-03-16.",
    "messages": "Text messages (SMS) you sent and received, by phone number.",
    "wallet": "Your money: balance, transactions, sending money and payment requests, by email.",
    "notes": "Your notes, with titles, contents and tags.",
    "shop": "An online shop: search products, a cart, and checkout paid from the wallet.",
}


def _writes(api: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an API that may change the world: each call bumps ``Apps.version`` (anchors re-hash only then)."""

    @functools.wraps(api)
    def call(self: "Apps", *args: Any, **kwargs: Any) -> Any:
        self.version += 1
        return api(self, *args, **kwargs)

    return call


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split())


class Apps:
    """The APIs of one world. ``Apps(world).tools()`` → ``{name: Tool}``; ``apps.world`` may be swapped on reset."""

    def __init__(self, world: World | None = None):
        self.world: World = world or {}
        #: bumped by every call of an API that may write; with ``id(world)`` it keys the canonical-state cache
        self.version = 0
        self.answer: str | None = None
        self.completed = False

    def tools(self) -> dict[str, Tool]:
        """Every API as a :class:`~envs.tools.protocol.Tool`, by name."""
        return {name: Tool(name, getattr(self, name), schema) for name, schema in api_schemas().items()}

    # -- helpers -----------------------------------------------------------------------
    def _get(self, table: str, record_id: int, what: str) -> dict[str, Any]:
        record = self.world[table].get(record_id)
        if record is None:
            raise ToolError(f"There is no {what} with id {record_id}.")
        return record

    def _contact_by(self, field: str, value: str) -> dict[str, Any] | None:
        return next((c for c in self.world["contacts"].values() if _norm(c[field]) == _norm(value)), None)

    def _charge(self, amount: float) -> None:
        account = self.world["account"][1]
        if amount > account["balance"] + 1e-9:
            raise ToolError(f"Insufficient balance: {account['balance']:.2f} < {amount:.2f}.")
        account["balance"] = round(account["balance"] - amount, 2)

    # -- docs ----------------------------------------------------------------------------
    def docs_list_apps(self) -> list[dict[str, str]]:
        """List the available apps with a one-line description each."""
        return [{"app": app, "description": text} for app, text in APPS.items()]

    def docs_list_apis(self, app: str) -> list[dict[str, str]]:
        """List the APIs of one app with their one-line descriptions.

        Args:
            app: the app's name, e.g. "contacts".
        """
        if app not in APPS:
            raise ToolError(f"Unknown app {app!r}; the apps are {sorted(APPS)}.")
        return [{"api": name, "description": schema["function"]["description"].split("\n")[0]}
                for name, schema in api_schemas().items() if name.startswith(app + "_")]

    def docs_show_api_doc(self, api: str) -> dict[str, Any]:
        """Show the full documentation of one API: its description and parameters (JSON schema).

        Args:
            api: the API's name, e.g. "contacts_search".
        """
        if api not in api_schemas():
            raise ToolError(f"Unknown API {api!r}; use docs_list_apis to see an app's APIs.")
        return api_schemas()[api]["function"]

    # -- supervisor ----------------------------------------------------------------------
    def supervisor_show_profile(self) -> dict[str, str]:
        """Show your own name, email and phone number, and today's date."""
        return {**self.world["user"][1], "today": TODAY}

    @_writes
    def supervisor_complete_task(self, answer: str | int | float | None = None) -> str:
        """Finish the task. Call it last, once; if the task asks a question, pass the answer.

        Args:
            answer: the answer to the task's question (a number, name, …); leave out for tasks that ask for actions.
        """
        self.completed = True
        self.answer = None if answer is None else str(answer)
        return "Task marked as complete."

    # -- contacts ------------------------------------------------------------------------
    def contacts_search(self, query: str = "", relationship: Relationship | None = None) -> list[dict[str, Any]]:
        """Search contacts by a part of their name, phone or email.

        Args:
            query: text to look for (case-insensitive); empty matches everyone.
            relationship: keep only contacts with this relationship.
        """
        q = _norm(query)
        return [dict(c) for c in self.world["contacts"].values()
                if (not q or any(q in _norm(c[k]) for k in ("name", "phone", "email")))
                and (relationship is None or c["relationship"] == relationship)]

    def contacts_show(self, contact_id: int) -> dict[str, Any]:
        """Show one contact.

        Args:
            contact_id: the contact's id.
        """
        return dict(self._get("contacts", contact_id, "contact"))

    @_writes
    def contacts_add(self, name: str, phone: str, email: str, relationship: Relationship = "friend") -> dict[str, Any]:
        """Add a new contact.

        Args:
            name: full name.
            phone: phone number, e.g. "555-123-4567".
            email: email address.
            relationship: how you know them.
        """
        if not name.strip():
            raise ToolError("The name must not be empty.")
        if self._contact_by("name", name):
            raise ToolError(f"A contact named {name!r} already exists.")
        new_id = next_id(self.world["contacts"])
        self.world["contacts"][new_id] = {"id": new_id, "name": name.strip(), "phone": phone.strip(),
                                          "email": email.strip(), "relationship": relationship}
        return dict(self.world["contacts"][new_id])

    @_writes
    def contacts_update(self, contact_id: int, phone: str | None = None, email: str | None = None,
                        relationship: Relationship | None = None) -> dict[str, Any]:
        """Change a contact's phone, email or relationship; fields left out stay as they are.

        Args:
            contact_id: the contact's id.
            phone: new phone number.
            email: new email address.
            relationship: new relationship.
        """
        contact = self._get("contacts", contact_id, "contact")
        for key, value in (("phone", phone), ("email", email), ("relationship", relationship)):
            if value is not None:
                contact[key] = value.strip()
        return dict(contact)

    @_writes
    def contacts_delete(self, contact_id: int) -> str:
        """Delete a contact.

        Args:
            contact_id: the contact's id.
        """
        self._get("contacts", contact_id, "contact")
        del self.world["contacts"][contact_id]
        return f"Contact {contact_id} deleted."

    # -- calendar ------------------------------------------------------------------------
    def calendar_list_events(self, date: str | None = None) -> list[dict[str, Any]]:
        """List calendar events, sorted by date and time.

        Args:
            date: only this day, as YYYY-MM-DD.
        """
        events = [dict(e) for e in self.world["events"].values() if date is None or e["date"] == date.strip()]
        return sorted(events, key=lambda e: (e["date"], e["start_time"], e["id"]))

    def calendar_search_events(self, query: str) -> list[dict[str, Any]]:
        """Find events whose title contains the query (case-insensitive).

        Args:
            query: text to look for in titles.
        """
        return [dict(e) for e in self.world["events"].values() if _norm(query) in _norm(e["title"])]

    @_writes
    def calendar_create_event(self, title: str, date: str, start_time: str, duration_minutes: int = 60,
                              attendees: list[str] = []) -> dict[str, Any]:  # noqa: B006 - schema default, never mutated
        """Create a calendar event.

        Args:
            title: the event's title.
            date: the day, as YYYY-MM-DD.
            start_time: the start, as HH:MM (24 h).
            duration_minutes: length in minutes.
            attendees: email addresses of the people invited.
        """
        if duration_minutes <= 0:
            raise ToolError("duration_minutes must be positive.")
        new_id = next_id(self.world["events"])
        self.world["events"][new_id] = {"id": new_id, "title": title.strip(), "date": date.strip(),
                                        "start_time": start_time.strip(), "duration_minutes": duration_minutes,
                                        "attendees": sorted(a.strip() for a in attendees)}
        return dict(self.world["events"][new_id])

    @_writes
    def calendar_reschedule_event(self, event_id: int, date: str, start_time: str) -> dict[str, Any]:
        """Move an event to another day and start time.

        Args:
            event_id: the event's id.
            date: the new day, as YYYY-MM-DD.
            start_time: the new start, as HH:MM (24 h).
        """
        event = self._get("events", event_id, "event")
        event["date"], event["start_time"] = date.strip(), start_time.strip()
        return dict(event)

    @_writes
    def calendar_cancel_event(self, event_id: int) -> str:
        """Cancel (delete) an event.

        Args:
            event_id: the event's id.
        """
        self._get("events", event_id, "event")
        del self.world["events"][event_id]
        return f"Event {event_id} cancelled."

    # -- messages ------------------------------------------------------------------------
    def messages_search(self, query: str = "", phone_number: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """Search text messages, newest first.

        Args:
            query: text to look for in messages (case-insensitive); empty matches all.
            phone_number: only messages with this phone number.
            limit: the most messages to return.
        """
        found = [dict(m) for m in self.world["messages"].values()
                 if _norm(query) in _norm(m["text"]) and (phone_number is None or m["phone_number"] == phone_number.strip())]
        return sorted(found, key=lambda m: (m["date"], m["id"]), reverse=True)[: max(limit, 0)]

    def messages_show(self, message_id: int) -> dict[str, Any]:
        """Show one message.

        Args:
            message_id: the message's id.
        """
        return dict(self._get("messages", message_id, "message"))

    @_writes
    def messages_send(self, phone_number: str, text: str) -> dict[str, Any]:
        """Send a text message.

        Args:
            phone_number: the recipient's phone number.
            text: the message.
        """
        if not text.strip():
            raise ToolError("The message text must not be empty.")
        new_id = next_id(self.world["messages"])
        self.world["messages"][new_id] = {"id": new_id, "phone_number": phone_number.strip(), "direction": "sent",
                                          "text": text.strip(), "date": TODAY}
        return dict(self.world["messages"][new_id])

    @_writes
    def messages_delete(self, message_id: int) -> str:
        """Delete a message.

        Args:
            message_id: the message's id.
        """
        self._get("messages", message_id, "message")
        del self.world["messages"][message_id]
        return f"Message {message_id} deleted."

    # -- wallet --------------------------------------------------------------------------
    def wallet_show_balance(self) -> dict[str, float]:
        """Show the wallet's balance."""
        return {"balance": self.world["account"][1]["balance"]}

    def wallet_list_transactions(self, direction: Literal["sent", "received"] | None = None,
                                 email: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """List money transfers, newest first.

        Args:
            direction: only money you sent, or only money you received.
            email: only transfers with this email address.
            limit: the most transactions to return.
        """
        found = [dict(t) for t in self.world["transactions"].values()
                 if (direction is None or t["direction"] == direction) and (email is None or _norm(t["email"]) == _norm(email))]
        return sorted(found, key=lambda t: (t["date"], t["id"]), reverse=True)[: max(limit, 0)]

    @_writes
    def wallet_send_money(self, email: str, amount: float, note: str = "") -> dict[str, Any]:
        """Send money from your balance to someone, by email.

        Args:
            email: the recipient's email address.
            amount: how much, in dollars.
            note: a note shown with the transfer.
        """
        if amount <= 0:
            raise ToolError("The amount must be positive.")
        self._charge(round(amount, 2))
        new_id = next_id(self.world["transactions"])
        self.world["transactions"][new_id] = {"id": new_id, "direction": "sent", "email": email.strip(),
                                              "amount": round(amount, 2), "note": note.strip(), "date": TODAY}
        return dict(self.world["transactions"][new_id])

    def wallet_list_payment_requests(self, status: Literal["pending", "paid", "declined"] | None = None) -> list[dict[str, Any]]:
        """List the payment requests others sent you.

        Args:
            status: only requests with this status.
        """
        return [dict(r) for r in self.world["requests"].values() if status is None or r["status"] == status]

    @_writes
    def wallet_pay_request(self, request_id: int) -> dict[str, Any]:
        """Pay a pending payment request from your balance.

        Args:
            request_id: the request's id.
        """
        request = self._get("requests", request_id, "payment request")
        if request["status"] != "pending":
            raise ToolError(f"Request {request_id} is {request['status']}, not pending.")
        self._charge(request["amount"])
        request["status"] = "paid"
        new_id = next_id(self.world["transactions"])
        self.world["transactions"][new_id] = {"id": new_id, "direction": "sent", "email": request["email"],
                                              "amount": request["amount"], "note": request["note"], "date": TODAY}
        return dict(request)

    @_writes
    def wallet_decline_request(self, request_id: int) -> dict[str, Any]:
        """Decline a pending payment request.

        Args:
            request_id: the request's id.
        """
        request = self._get("requests", request_id, "payment request")
        if request["status"] != "pending":
            raise ToolError(f"Request {request_id} is {request['status']}, not pending.")
        request["status"] = "declined"
        return dict(request)

    @_writes
    def wallet_request_money(self, email: str, amount: float, note: str = "") -> str:
        """Ask someone to pay you.

        Args:
            email: who should pay you.
            amount: how much, in dollars.
            note: what it is for.
        """
        if amount <= 0:
            raise ToolError("The amount must be positive.")
        outgoing = self.world["outgoing_requests"]
        new_id = next_id(outgoing)
        outgoing[new_id] = {"id": new_id, "email": email.strip(), "amount": round(amount, 2), "note": note.strip()}
        return f"Requested {amount:.2f} from {email}."

    # -- notes ---------------------------------------------------------------------------
    def notes_list(self, tag: str | None = None) -> list[dict[str, Any]]:
        """List your notes' ids, titles and tags (not their contents).

        Args:
            tag: only notes with this tag.
        """
        return [{"id": n["id"], "title": n["title"], "tags": list(n["tags"])} for n in self.world["notes"].values()
                if tag is None or tag in n["tags"]]

    def notes_search(self, query: str) -> list[dict[str, Any]]:
        """Find notes whose title or content contains the query; returns ids, titles and tags.

        Args:
            query: text to look for (case-insensitive).
        """
        q = _norm(query)
        return [{"id": n["id"], "title": n["title"], "tags": list(n["tags"])} for n in self.world["notes"].values()
                if q in _norm(n["title"]) or q in _norm(n["content"])]

    def notes_read(self, note_id: int) -> dict[str, Any]:
        """Show a note with its content.

        Args:
            note_id: the note's id.
        """
        note = self._get("notes", note_id, "note")
        return {**note, "tags": list(note["tags"])}

    @_writes
    def notes_create(self, title: str, content: str, tags: list[str] = []) -> dict[str, Any]:  # noqa: B006
        """Create a note.

        Args:
            title: the note's title.
            content: the note's text.
            tags: labels for the note.
        """
        new_id = next_id(self.world["notes"])
        self.world["notes"][new_id] = {"id": new_id, "title": title.strip(), "content": content, "tags": list(tags)}
        return dict(self.world["notes"][new_id])

    @_writes
    def notes_update(self, note_id: int, content: str) -> dict[str, Any]:
        """Replace a note's content.

        Args:
            note_id: the note's id.
            content: the new text.
        """
        note = self._get("notes", note_id, "note")
        note["content"] = content
        return {**note, "tags": list(note["tags"])}

    @_writes
    def notes_delete(self, note_id: int) -> str:
        """Delete a note.

        Args:
            note_id: the note's id.
        """
        self._get("notes", note_id, "note")
        del self.world["notes"][note_id]
        return f"Note {note_id} deleted."

    # -- shop ----------------------------------------------------------------------------
    def shop_search_products(self, query: str = "", max_price: float | None = None) -> list[dict[str, Any]]:
        """Search the shop by product name or category.

        Args:
            query: text to look for (case-insensitive); empty lists everything.
            max_price: only products at most this price.
        """
        q = _norm(query)
        return [dict(p) for p in self.world["products"].values()
                if (q in _norm(p["name"]) or q in _norm(p["category"])) and (max_price is None or p["price"] <= max_price)]

    @_writes
    def shop_add_to_cart(self, product_id: int, quantity: int = 1) -> dict[str, Any]:
        """Put a product in the cart.

        Args:
            product_id: the product's id.
            quantity: how many.
        """
        product = self._get("products", product_id, "product")
        line = self.world["cart"].get(product_id, {"product_id": product_id, "quantity": 0})
        if quantity < 1 or line["quantity"] + quantity > product["stock"]:
            raise ToolError(f"Cannot add {quantity}: {product['stock']} in stock, {line['quantity']} already in the cart.")
        line["quantity"] += quantity
        self.world["cart"][product_id] = line
        return dict(line)

    @_writes
    def shop_remove_from_cart(self, product_id: int) -> str:
        """Take a product out of the cart.

        Args:
            product_id: the product's id.
        """
        if product_id not in self.world["cart"]:
            raise ToolError(f"Product {product_id} is not in the cart.")
        del self.world["cart"][product_id]
        return f"Product {product_id} removed from the cart."

    def shop_view_cart(self) -> dict[str, Any]:
        """Show the cart's lines and total."""
        lines = [{**line, "name": self.world["products"][pid]["name"], "price": self.world["products"][pid]["price"]}
                 for pid, line in sorted(self.world["cart"].items())]
        return {"items": lines, "total": round(sum(x["price"] * x["quantity"] for x in lines), 2)}

    @_writes
    def shop_checkout(self) -> dict[str, Any]:
        """Buy everything in the cart, paid from the wallet balance; empties the cart."""
        cart = self.shop_view_cart()
        if not cart["items"]:
            raise ToolError("The cart is empty.")
        self._charge(cart["total"])
        for line in cart["items"]:
            self.world["products"][line["product_id"]]["stock"] -= line["quantity"]
        new_id = next_id(self.world["orders"])
        self.world["orders"][new_id] = {"id": new_id, "date": TODAY, "total": cart["total"],
                                        "items": [{"product_id": x["product_id"], "quantity": x["quantity"],
                                                   "price": x["price"]} for x in cart["items"]]}
        self.world["cart"].clear()
        return dict(self.world["orders"][new_id])


def api_names() -> list[str]:
    """All API names, grouped by app in :data:`APPS` order."""
    names = [n for n in vars(Apps) if not n.startswith("_") and n.split("_")[0] in APPS]
    return sorted(names, key=lambda n: (list(APPS).index(n.split("_")[0]), names.index(n)))


@functools.cache
def api_schemas() -> dict[str, dict[str, Any]]:
    """Every API's schema by name (derived once from the methods of :class:`Apps`)."""
    return {name: function_schema(getattr(Apps, name)) for name in api_names()}
