"""Personal details shown masked in lists and exports, in full only on a detail page.

A receptionist scanning the queue needs to tell requests apart, not read every phone
number over a shoulder; the detail page (which is audited) shows the full value.
"""

from __future__ import annotations

MASK = "\u2022"  # bullet


def mask_phone(value: str | None) -> str:
    """+6591234567 -> +65••••••67 (country code and last two digits)."""
    if not value:
        return ""
    digits = value.strip()
    keep_start = 3 if digits.startswith("+") else 1
    if len(digits) <= keep_start + 2:
        return MASK * len(digits)
    return digits[:keep_start] + MASK * (len(digits) - keep_start - 2) + digits[-2:]


def mask_email(value: str | None) -> str:
    """jane.doe@example.com -> j•••@example.com."""
    if not value:
        return ""
    local, at, domain = value.partition("@")
    if not at:
        return MASK * 3
    return f"{local[:1]}{MASK * 3}@{domain}"


def mask_name(value: str | None) -> str:
    """Jane van Doe -> J. v. D. (initials only)."""
    if not value:
        return ""
    return " ".join(f"{part[0]}." for part in value.split() if part)
