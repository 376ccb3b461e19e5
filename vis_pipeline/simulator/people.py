"""Names, numbers and the account behind a simulated company: users, callers, phone numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

CALLER_NAMES: tuple[str, ...] = (
    "Zoë Müller",
    "李雷",
    "Ñandú SA",
    "José Álvarez",
    "Łukasz Żółć",
    "Søren Kierkegård",
    "Ayşe Yılmaz",
    "محمد الأحمد",
    "Дмитрий Иванов",
    "Ngozi Okonkwo",
    "Émilie Dubois",
    "Björk Guðmundsdóttir",
    "山田 太郎",
    "김민준",
    "Αλέξανδρος Παπαδόπουλος",
    "🍕 Pizza Planet",
    "Café Ümlaut GmbH",
    "株式会社テスト",
    'Seán "Tiny" O\'Brien',
    "Back\\slash & Co",
    "ACME Corp.",
    "Dr. Jane Smith",
    "Wei Zhang 🚀",
    "Ana María Pérez-González",
    "François L'Écuyer",
    "Priya Ramanathan",
    "Ole Nørgaard",
    "Tomás Ó Súilleabháin",
    "Ελένη",
    "שרה כהן",
)
"""Caller ids: people and companies in many scripts, with quotes, backslashes and emoji."""

_FIRST_NAMES = ("Robert", "Zoë", "Amélie", "Jürgen", "Saanvi", "Kwame", "Marta", "Hiro", "Ines")
_LAST_NAMES = ("Smith", "Müller", "García", "Nakamura", "Okafor", "Kowalski", "Larsen", "Rossi")

PHONE_PREFIXES: tuple[str, ...] = (
    "+1415555",
    "+1212555",
    "+1312555",
    "+4420794",
    "+4930901",
    "+3314152",
    "+8135550",
    "+6129374",
    "+5511955",
)
"""E.164 prefixes phone numbers are drawn from (each followed by four digits)."""

ACCOUNT_NAME = "Zoë's Plumbing & Heating Ltd."
"""The simulated company's account name (not ASCII on purpose)."""


def phone_numbers(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` E.164 numbers such as ``+14155550123``."""
    prefixes = rng.integers(0, len(PHONE_PREFIXES), count)
    lines = rng.integers(0, 10_000, count)
    return [
        f"{PHONE_PREFIXES[p]}{n:04d}"
        for p, n in zip(prefixes.tolist(), lines.tolist(), strict=True)
    ]


def make_users(
    rng: np.random.Generator, count: int, account_id: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """The company's users (User records as the API spells them) and each user's UCI id."""
    user_ids = (rng.choice(900_000, size=count, replace=False) + 100_000).tolist()
    uci_ids = (rng.choice(9_000_000, size=count, replace=False) + 1_000_000).tolist()
    numbers = phone_numbers(rng, count)
    users: list[dict[str, Any]] = []
    for index, (user_id, uci_id) in enumerate(zip(user_ids, uci_ids, strict=True)):
        first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(index * 3) % len(_LAST_NAMES)]
        users.append(
            {
                "id": user_id,
                "accountId": account_id,
                "acountLabel": ACCOUNT_NAME,
                "firstName": first,
                "lastName": last,
                "emailAddress": f"user{index + 1}@example.com",
                "contactNumber": numbers[index].lstrip("+"),
                "status": "ACTIVE",
                "roles": [{"code": "AU", "name": "Account User"}]
                + ([{"code": "AA", "name": "Account Administrator"}] if index == 0 else []),
                "ucis": [
                    {
                        "id": uci_id,
                        "type": "USER_UCI",
                        "ucpLabel": f"Extension {101 + index}",
                        "health": {"status": "OK", "message": "Healthy"},
                    }
                ],
            }
        )
    return users, uci_ids


def make_account(account_id: int, uci_id: int) -> dict[str, Any]:
    """The company's Account record."""
    return {
        "id": account_id,
        "name": ACCOUNT_NAME,
        "org": ACCOUNT_NAME,
        "status": "ACTIVE",
        "ucis": [
            {
                "id": uci_id,
                "type": "ACCOUNT_UCI",
                "ucpAccountId": f"ucp-{account_id}",
                "ucpLabel": "Main PBX",
                "health": {"status": "OK", "message": "Healthy"},
            }
        ],
    }
