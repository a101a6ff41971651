"""Mask personal data in text before it is stored: e-mail addresses, payment card numbers, phone numbers."""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes (checked with the Luhn sum)
CARD = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
# an optional +country code, an optional (area) code, then 2-4 digit groups; 7-15 digits in all
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}(?![\w])")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "<card>" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or ISO_DATE.match(text.strip()):
        return text
    return "<phone>"


def mask_text(text: str) -> str:
    """Replace e-mail addresses with <email>, card numbers with <card> and phone numbers with <phone>."""
    text = EMAIL.sub("<email>", text)
    text = CARD.sub(_card, text)
    return PHONE.sub(_phone, text)


def mask_value(value: Any) -> Any:
    return mask_text(value) if isinstance(value, str) else value
