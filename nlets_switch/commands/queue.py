"""``nlets-switch queue``: the intervention queue and held queues of a running switch."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from nlets_switch.commands._common import SubParsers
from nlets_switch.commands._operator import EXIT_STATUSES, add_api_arguments, request, run

EPILOG = f"""examples:
  nlets-switch queue list                      the intervention queue
  nlets-switch queue list --held NYNLETS00     what is owed to one destination
  nlets-switch queue show 42                   one item (its text with see_text)
  nlets-switch queue release 42 --reason "checked"
  nlets-switch queue release --held NYNLETS00  everything held for review for NY
  nlets-switch queue edit 42 --text "MEET AT 1000" --reason typo
  nlets-switch queue reroute 42 --to AZ0070500
  nlets-switch queue purge 42 --reason "sent in error"
  nlets-switch queue purge --held NYNLETS00 --reason "state gone for the day"
  nlets-switch queue reroute --held NYNLETS00 --to NY0303000
  nlets-switch queue resend 17                 a delivered message (by message id)

Items are named by delivery id (the id column of list). A purge tells each
sender with SM .04.; an edit is kept beside the original and waits for review
again. A release delivers now when the destination is signed on, else the
message stays owed to it (it goes at sign-on); what is owed to a destination
that is not signed on has nothing to release. Reroute and purge of a held
queue take a destination that is not signed on.
{EXIT_STATUSES}
"""


def register(sub: SubParsers) -> None:
    """Add ``queue``."""
    p = sub.add_parser(
        "queue", help="list, show, release, edit, reroute, purge or resend held messages",
        description="Act on the messages a running switch holds for review (intervention "
        "rules) or owes to a destination that is not signed on.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("list", "show", "release", "edit", "reroute", "purge",
                                      "resend"))
    p.add_argument("id", nargs="?", type=int,
                   help="delivery id (resend: message id); not with --held")
    p.add_argument("--held", metavar="DEST", help="a destination's held queue instead")
    p.add_argument("--to", metavar="ADDRESS", help="reroute: where to send it")
    p.add_argument("--text", help="edit: the new message text (after TXT)")
    p.add_argument("--reason", default="", help="why (kept in the audit trail; purge needs one)")
    add_api_arguments(p)
    p.set_defaults(func=queue)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _table(items: list[dict[str, Any]], empty: str) -> str:
    if not items:
        return empty
    rows = [("ID", "MSG", "KEY", "FROM", "TO", "STATE", "RECEIVED (UTC)")]
    rows += [(str(i["id"]), str(i["msg_id"]), i["key"], i["origin"], i["to"], i["state"],
              _when(i.get("received_at"))) for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _show(item: dict[str, Any]) -> str:
    lines = [f"delivery {item['id']} of message {item['msg_id']}: {item['key']} from "
             f"{item['origin']} to {item['to']} ({item['state']}), received "
             f"{_when(item.get('received_at'))} UTC"]
    for e in item.get("edits") or []:
        lines.append(f"edited as message {e['msg_id']} at {_when(e['at'])} UTC ({e['reason']})")
    lines.append("")
    lines.append(item["text"] if "text" in item else
                 "(text withheld: the token may not see message text)")
    return "\n".join(lines)


def _done(answer: dict[str, Any]) -> str:
    what = answer.get("action", "done")
    if "edited_msg_id" in answer:
        return f"edited: message {answer['edited_msg_id']} waits for review"
    n = len(answer.get("deliveries") or answer.get("released") or [answer.get("id")])
    target = answer.get("destination") or answer.get("msg_id") or answer.get("id")
    line = f"{what}: {n} deliver{'y' if n == 1 else 'ies'} ({target})"
    if "released" in answer:  # a release: sent now, or owed until the destination signs on
        sent, later = len(answer["delivered"]), n - len(answer["delivered"])
        line += "; " + ", ".join(
            part for part in (f"{sent} sent now" if sent else "",
                              f"{later} owed until it signs on" if later else "") if part)
        if answer.get("owed"):
            line += f"; {len(answer['owed'])} already owed, unchanged"
    return line


def queue(args: argparse.Namespace) -> int:
    """Do the action; the exit status."""
    a = args.action
    held_ok = ("release", "reroute", "purge")
    need_id = a not in ("list",) and not (args.held and a in held_ok)
    if need_id and args.id is None:
        print(f"nlets-switch queue {a}: give an id" +
              (" (or --held DEST)" if a in held_ok else ""))
        return 3
    if a == "reroute" and not args.to:
        print("nlets-switch queue reroute: give --to ADDRESS")
        return 3
    if a == "edit" and args.text is None:
        print("nlets-switch queue edit: give --text TEXT")
        return 3
    body: dict[str, Any] = {"reason": args.reason}
    if args.to:
        body["to"] = args.to
    if args.text is not None:
        body["text"] = args.text
    name = f"queue {a}"
    if a == "list":
        if args.held:
            return run(name, args, lambda: request(args, "GET", f"/api/held/{args.held}"),
                       lambda r: _table(r["held"], f"nothing is owed to {r['destination']}"))
        return run(name, args, lambda: request(args, "GET", "/api/queue"),
                   lambda r: _table(r["queue"], "the intervention queue is empty"))
    if a == "show":
        return run(name, args, lambda: request(args, "GET", f"/api/queue/{args.id}"), _show)
    if a == "resend":
        path = f"/api/messages/{args.id}/resend"
    elif args.held:
        path = f"/api/held/{args.held}/{a}"
    elif a in held_ok:
        # An item of the intervention queue or a held delivery: the API tells them apart.
        path = f"/api/deliveries/{args.id}/{a}"
    else:
        path = f"/api/queue/{args.id}/{a}"
    return run(name, args, lambda: request(args, "POST", path, body), _done)
