"""Improve the bot: staff's labels of misunderstood messages, and their export as NLU data."""

from __future__ import annotations

from starlette.responses import Response

from bot.console.nlu_export import export_yaml
from bot.console.web import Ctx, page
from bot.storage import console as store


@page("improve")
def improve(ctx: Ctx) -> Response:
    """The labels given so far and the intents most often corrected."""
    corrections = store.list_corrections(ctx.db)
    top = store.most_corrected(ctx.db)
    not_understood = store.list_conversations(ctx.reports_db, store.ConversationFilter(flag="not_understood"),
                                              per_page=10)
    return ctx.render("improve.html", corrections=corrections, top=top,
                      peak=max((n for _, n in top), default=1), not_understood=not_understood,
                      nav="improve")


@page("export")
def export(ctx: Ctx) -> Response:
    """The labels as Rasa NLU YAML, to review and merge into data/nlu/."""
    corrections = store.list_corrections(ctx.db, limit=100_000)
    ctx.audit("export_nlu", "nlu_corrections", None, f"{len(corrections)} labels")
    return Response(export_yaml(corrections, ctx.console.intents), media_type="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="corrections.yml"'})
