"""Start-up check: settings, practice profile and knowledge base are valid before serving.

`make run` calls this before starting anything, so a typo in the profile or an answer
pointing to a missing topic stops the start with a clear message instead of surfacing in
a patient's conversation. Placeholders are listed (and refused in production).
"""

from __future__ import annotations

import sys

from bot.knowledge_base import KnowledgeBaseError, load_knowledge_base
from bot.profile import ProfileError, load_profile
from bot.settings import SettingsError, get_settings


def main() -> int:
    """Validate; print what still has to be filled in; exit 1 on an error."""
    try:
        settings = get_settings()
        profile = load_profile(production=settings.is_production)
        kb = load_knowledge_base(profile=profile)
    except (SettingsError, ProfileError, KnowledgeBaseError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    print(f"profile ok: {profile.practice_name}, {profile.doctor}; knowledge base {kb.version} "
          f"({len(kb.topics)} topics, reviewed {kb.reviewed})")
    if profile.placeholders:
        print("still to fill in (data/practice_profile.yml): " + ", ".join(profile.placeholders))
    if profile.unanswered:
        print("questions the assistant will hand to staff (not filled in): "
              + ", ".join(profile.unanswered))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
