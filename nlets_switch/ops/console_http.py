"""The operator console's HTTP API: the intervention queue, held queues, remove status,
broadcasts (docs/operators.md, "A day at the console").

Routes (every one under ``/api``, so the token guard and ``api_access`` audit
of :mod:`nlets_switch.ops.http` apply first)::

    GET  /api/queue                       the intervention queue (no text)
    GET  /api/queue/{id}                  one item; its text only with see_text
    POST /api/queue/{id}/release          {"reason"}
    POST /api/queue/{id}/edit             {"text", "reason"}        (operate + see_text)
    POST /api/queue/{id}/reroute          {"to", "reason"}
    POST /api/queue/{id}/purge            {"reason"}                (reason required)
    GET  /api/held/{dest}                 what waits for one destination (owed, review)
    POST /api/held/{dest}/release         {"reason"}                every one held for review
    POST /api/held/{dest}/reroute         {"to", "reason"}          every one of them
    POST /api/held/{dest}/purge           {"reason"}
    POST /api/deliveries/{id}/release     {"reason"}                one held delivery
    POST /api/deliveries/{id}/reroute     {"to", "reason"}
    POST /api/deliveries/{id}/purge       {"reason"}
    POST /api/messages/{id}/resend        {"reason"}                its delivered copies
    GET  /api/remove-status               the ORIs on remove status
    POST /api/remove-status               {"ori", "keys", "lift", "reason"}
    POST /api/broadcast                   {"kind": "out-of-service" | "in-service", "until"}

Reading needs ``read``; every POST needs ``operate`` (an edit also
``see_text``: it shows and replaces text). A refused action is audited as
``operator_action`` ``denied`` with the token's name, and answers 403.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from nlets_switch.core.console import ActionRefused, Item
from nlets_switch.ops.console import OperatorConsole
from nlets_switch.ops.console_history import History, HistoryTask
from nlets_switch.store.console import describe

if TYPE_CHECKING:
    from nlets_switch.ops.http import HttpServer
    from nlets_switch.ops.monitor import ApiToken

_MAX_REASON: Final = 500
#: The files /static/ serves, and their types (nothing else under the package).
_STATIC: Final = {
    "map.js": "application/javascript", "console.js": "application/javascript",
    "vendor/uPlot.iife.min.js": "application/javascript", "vendor/uPlot.min.css": "text/css",
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda o: json.dumps(o, default=str, indent=1))


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
           409: web.HTTPConflict}[status]
    return cls(text=json.dumps({"error": message}), content_type="application/json")


def _id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except ValueError:
        raise _error(400, f"{name} must be a number") from None
    if not 0 <= value < 2**63:
        raise _error(404, f"no such {name}")
    return value


class ConsoleApi:
    """The handlers; ``add_routes`` puts them on the server's application."""

    def __init__(self, server: HttpServer, token_of: Any) -> None:
        self.server = server
        self.console = OperatorConsole(server.switch)
        self._token_of = token_of
        #: The charts' last hour (ops/console_history.py).
        self.history = History()
        self._history_task = HistoryTask(self.history, server.monitoring.monitor)

    def add_routes(self, app: web.Application) -> None:
        """Register every console route."""
        r = app.router
        r.add_get("/api/queue", self.queue)
        r.add_get("/api/queue/{id}", self.queue_item)
        for action in ("release", "edit", "reroute", "purge"):
            r.add_post(f"/api/queue/{{id}}/{action}", self.queue_action)
        r.add_get("/api/held/{dest}", self.held)
        r.add_post("/api/held/{dest}/{action}", self.held_action)
        r.add_post("/api/deliveries/{id}/{action}", self.delivery_action)
        r.add_post("/api/messages/{id}/resend", self.resend)
        r.add_get("/api/remove-status", self.removed)
        r.add_post("/api/remove-status", self.remove_status)
        r.add_post("/api/broadcast", self.broadcast)
        # The dashboard's own files and the directory its map is drawn from
        # (ORIs, roles, simulated or not: configuration, never message text).
        r.add_get("/static/{name:.+}", self.static)
        r.add_get("/dashboard/directory.json", self.directory)
        r.add_get("/dashboard/history.json", self.history_json)
        app.on_startup.append(self._history_task.start)
        app.on_cleanup.append(self._history_task.stop)

    # -- who may -----------------------------------------------------------------------

    def _token(self, request: web.Request) -> ApiToken:
        tok: ApiToken = self._token_of(request)
        return tok

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise _error(400, "the body must be a JSON object") from None
        if not isinstance(data, dict):
            raise _error(400, "the body must be a JSON object")
        return data

    def _allow(self, request: web.Request, action: str, *needs: str) -> ApiToken:
        tok = self._token(request)
        missing = [p for p in needs if not tok.may(p)]
        if missing:
            self.console.audit(tok.name, "denied", action, "", path=request.path,
                               missing=missing)
            raise _error(403, f"{action} needs a token with {' and '.join(missing)}")
        return tok

    @staticmethod
    def _reason(body: dict[str, Any], required: bool = False) -> str:
        reason = body.get("reason") or ""
        if not isinstance(reason, str) or len(reason) > _MAX_REASON:
            raise _error(400, f"reason must be text of at most {_MAX_REASON} characters")
        if required and not reason.strip():
            raise _error(400, "a reason is required")
        return reason.strip()

    @staticmethod
    def _address(body: dict[str, Any]) -> str:
        to = body.get("to")
        if not isinstance(to, str) or not to.strip():
            raise _error(400, "to: the destination to send it to is required")
        return to.strip().upper()

    async def _act(self, fn: Any, *args: Any) -> Any:
        try:
            return await fn(*args)
        except ActionRefused as e:
            raise _error(409, str(e)) from None

    # -- reading -----------------------------------------------------------------------

    async def queue(self, request: web.Request) -> web.Response:
        """The intervention queue, oldest first (never the text)."""
        items = await self.console.queue()
        return _json({"queue": [describe(it, False) for it in items], "count": len(items)})

    async def queue_item(self, request: web.Request) -> web.Response:
        """One item of the queue: text only for see_text; its edits."""
        tok = self._token(request)
        it = await self._one(_id(request), None)
        row = describe(it, tok.may("see_text"))
        if not tok.may("see_text"):
            row["text_withheld"] = True
        row["edits"] = await self.console.edits(it.msg_id)
        return _json(row)

    async def held(self, request: web.Request) -> web.Response:
        """Deliveries owed to one destination (never the text)."""
        dest = request.match_info["dest"].upper()
        items = await self.console.held(dest)
        return _json({"destination": dest, "held": [describe(it, False) for it in items],
                      "count": len(items)})

    async def removed(self, request: web.Request) -> web.Response:
        """The ORIs on remove status."""
        return _json({"remove_status": await self.console.removed()})

    async def _one(self, dlv_id: int, states: tuple[str, ...] | None) -> Item:
        items = await self.console.items(ids=[dlv_id])
        if not items:
            raise _error(404, f"no delivery {dlv_id}")
        return items[0]

    async def static(self, request: web.Request) -> web.Response:
        """A file of the dashboard (package data nlets_switch/ops/static/)."""
        name = request.match_info["name"]
        ctype = _STATIC.get(name)
        if ctype is None:
            raise web.HTTPNotFound()
        data = resources.files("nlets_switch.ops").joinpath("static", *name.split("/"))
        return web.Response(body=data.read_bytes(), content_type=ctype,
                            headers={"Cache-Control": "no-cache"})

    async def directory(self, request: web.Request) -> web.Response:
        """The directory's ORIs for the dashboard's map."""
        entries = [{"ori": e.ori, "name": e.name, "state": e.state, "role": e.role,
                    "simulated": e.simulated} for e in self.server.switch.directory]
        return _json({"entries": entries})

    async def history_json(self, request: web.Request) -> web.Response:
        """The charts' last hour (counters and latencies only)."""
        return web.json_response(self.history.as_json())

    # -- acting --------------------------------------------------------------------------

    async def queue_action(self, request: web.Request) -> web.Response:
        """release, edit, reroute or purge one item of the intervention queue."""
        action = request.path.rsplit("/", 1)[1]
        needs = ("operate", "see_text") if action == "edit" else ("operate",)
        tok = self._allow(request, action, *needs)
        body = await self._body(request)
        reason = self._reason(body, required=action == "purge")
        it = await self._one(_id(request), None)
        c = self.console
        if action == "release":
            await self._act(c.release, [it], tok.name, reason)
        elif action == "purge":
            await self._act(c.purge, [it], tok.name, reason)
        elif action == "reroute":
            await self._act(c.reroute, [it], self._address(body), tok.name, reason)
        else:
            text = body.get("text")
            if not isinstance(text, str):
                raise _error(400, "text: the edited text is required")
            new_id = await self._act(c.edit, [it], text, tok.name, reason)
            return _json({"ok": True, "action": action, "id": it.id, "edited_msg_id": new_id})
        return _json({"ok": True, "action": action, "id": it.id})

    async def held_action(self, request: web.Request) -> web.Response:
        """release, reroute or purge everything held for one destination."""
        action = request.match_info["action"]
        if action not in ("release", "reroute", "purge"):
            raise _error(404, f"no action {action} on a held queue (release, reroute, purge)")
        tok = self._allow(request, action, "operate")
        body = await self._body(request)
        reason = self._reason(body, required=action == "purge")
        dest = request.match_info["dest"].upper()
        items = await self.console.held(dest)
        if not items:
            raise _error(404, f"nothing is held for {dest}")
        if action == "release":
            done = await self._act(self.console.release_held, items, tok.name, reason)
            return _json({"ok": True, "action": action, "destination": dest,
                          "deliveries": done["released"], **done})
        if action == "purge":
            await self._act(self.console.purge, items, tok.name, reason)
        else:
            await self._act(self.console.reroute, items, self._address(body), tok.name, reason)
        return _json({"ok": True, "action": action, "destination": dest,
                      "deliveries": [it.id for it in items]})

    async def delivery_action(self, request: web.Request) -> web.Response:
        """release, reroute or purge one held delivery."""
        action = request.match_info["action"]
        if action not in ("release", "reroute", "purge"):
            raise _error(404, f"no action {action} on a delivery (release, reroute, purge)")
        tok = self._allow(request, action, "operate")
        body = await self._body(request)
        reason = self._reason(body, required=action == "purge")
        it = await self._one(_id(request), None)
        if action == "release":
            done = await self._act(self.console.release_held, [it], tok.name, reason)
            return _json({"ok": True, "action": action, "id": it.id, **done})
        if action == "purge":
            await self._act(self.console.purge, [it], tok.name, reason)
        else:
            await self._act(self.console.reroute, [it], self._address(body), tok.name, reason)
        return _json({"ok": True, "action": action, "id": it.id})

    async def resend(self, request: web.Request) -> web.Response:
        """Deliver a delivered message again to each destination that acknowledged it."""
        tok = self._allow(request, "resend", "operate")
        body = await self._body(request)
        reason = self._reason(body)
        msg_id = _id(request)
        items = await self.console.items(msg_id=msg_id, states=("acked",))
        if not items:
            raise _error(404, f"message {msg_id} has no delivered copy to resend")
        await self._act(self.console.resend, items, tok.name, reason)
        return _json({"ok": True, "action": "resend", "msg_id": msg_id,
                      "deliveries": [it.id for it in items]})

    async def remove_status(self, request: web.Request) -> web.Response:
        """Put an ORI on remove status (some keys or all), or lift it."""
        body = await self._body(request)
        lift = bool(body.get("lift"))
        action = "lift_remove_status" if lift else "remove_status"
        tok = self._allow(request, action, "operate")
        reason = self._reason(body)
        ori = body.get("ori")
        if not isinstance(ori, str) or not ori.strip():
            raise _error(400, "ori is required")
        ori = ori.strip().upper()
        keys = body.get("keys")
        if keys is not None and (not isinstance(keys, list)
                                 or not all(isinstance(k, str) for k in keys)):
            raise _error(400, "keys must be a list of message keys (absent: every key)")
        if keys is not None:
            keys = [k.strip().upper() for k in keys] or None
        if not lift and self.server.switch.directory.entry(ori) is None:
            raise _error(404, f"{ori} is not in the directory")
        try:
            await self.console.remove_status(ori, keys, lift, tok.name, reason)
        except ActionRefused as e:
            raise _error(409, str(e)) from None
        return _json({"ok": True, "action": action, "ori": ori, "keys": keys})

    async def broadcast(self, request: web.Request) -> web.Response:
        """The switch's SM to every signed-on terminal."""
        tok = self._allow(request, "broadcast", "operate")
        body = await self._body(request)
        reason = self._reason(body)
        kind = body.get("kind")
        until = body.get("until")
        try:
            sent = await self.console.broadcast(str(kind), None if until is None else str(until),
                                          tok.name, reason)
        except ValueError as e:
            raise _error(400, str(e)) from None
        return _json({"ok": True, "action": "broadcast", "kind": kind, "to": sent})
