"""Staff take a conversation over, and give it back: the state and the command for it.

`take` marks the handoff request as taken and sets the conversation's `human_takeover`
slot through Rasa's HTTP API (auth token required), so `HumanTakeoverPolicy` keeps the
bot silent; `release` does the opposite. The staff console will call the same functions.

    python -m bot.handoff list
    python -m bot.handoff take web:abc123 --by "Nurse Lee"
    python -m bot.handoff release web:abc123
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

import requests

from bot.settings import get_settings
from bot.storage.repository import HandoffRecord, Repository


def _token() -> str:
    settings = get_settings()
    if settings.rasa_auth_token:
        return settings.rasa_auth_token
    path = settings.data_dir / "rasa-auth-token"
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""


def set_takeover(conversation_id: str, active: bool, rasa_url: Optional[str] = None) -> None:
    """Set or clear the `human_takeover` slot of a conversation (raises on failure)."""
    url = f"{rasa_url or get_settings().rasa_url}/conversations/{conversation_id}/tracker/events"
    response = requests.post(
        url,
        json=[{"event": "slot", "name": "human_takeover", "value": active}],
        params={"token": _token()},
        timeout=15,
    )
    response.raise_for_status()


def _handoffs_for(repo: Repository, conversation_id: str) -> List[HandoffRecord]:
    return [h for h in repo.open_handoffs(("open", "taken", "released")) if h.conversation_id == conversation_id]


def take(conversation_id: str, by: str, rasa_url: Optional[str] = None) -> None:
    """Silence the bot for this conversation and mark its handoff taken."""
    set_takeover(conversation_id, True, rasa_url)
    repo = Repository()
    for handoff in _handoffs_for(repo, conversation_id):
        repo.set_handoff_status(handoff.id, "taken", taken_by=by)


def release(conversation_id: str, rasa_url: Optional[str] = None) -> None:
    """Let the bot answer this conversation again."""
    set_takeover(conversation_id, False, rasa_url)
    repo = Repository()
    for handoff in _handoffs_for(repo, conversation_id):
        if handoff.status == "taken":
            repo.set_handoff_status(handoff.id, "released")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line for staff."""
    parser = argparse.ArgumentParser(description="Take over or release a patient conversation.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="open handoff requests")
    take_cmd = sub.add_parser("take", help="silence the bot; staff reply")
    take_cmd.add_argument("conversation_id")
    take_cmd.add_argument("--by", required=True, help="who takes it")
    release_cmd = sub.add_parser("release", help="let the bot answer again")
    release_cmd.add_argument("conversation_id")
    args = parser.parse_args(argv)
    if args.command == "list":
        for h in Repository().open_handoffs():
            when = "in hours" if h.within_hours else "out of hours"
            print(f"#{h.id} {h.status:8} {h.conversation_id} ({when}) {h.reason}")
    elif args.command == "take":
        take(args.conversation_id, args.by)
        print(f"{args.conversation_id}: taken over by {args.by}; the bot is silent")
    else:
        release(args.conversation_id)
        print(f"{args.conversation_id}: released; the bot answers again")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
