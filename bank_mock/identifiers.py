"""Valid-looking bank identifiers: Luhn card numbers, mod-97 IBANs, ABA routing numbers."""

from __future__ import annotations

import random
import string


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these digits are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def card_number(rng: random.Random, network: str) -> str:
    """A 16-digit Luhn-valid PAN: Visa starts with 4, Mastercard with 51-55."""
    prefix = "4" if network == "Visa" else str(rng.randint(51, 55))
    body = prefix + "".join(rng.choices(string.digits, k=15 - len(prefix)))
    return body + luhn_check_digit(body)


def _iban_remainder(text: str) -> int:
    digits = "".join(str(int(ch, 36)) for ch in text)
    return int(digits) % 97


def iban(country: str, bban: str) -> str:
    """An IBAN with correct ISO 13616 mod-97 check digits."""
    check = 98 - _iban_remainder(bban + country + "00")
    return f"{country}{check:02d}{bban}"


def iban_valid(value: str) -> bool:
    value = value.replace(" ", "").upper()
    if len(value) < 15 or not value[:2].isalpha() or not value[2:4].isdigit():
        return False
    if not value.isalnum():
        return False
    return _iban_remainder(value[4:] + value[:4]) == 1


def aba_routing(rng: random.Random) -> str:
    """A 9-digit US ABA routing number with a valid checksum."""
    first8 = [rng.randint(0, 1)] + [rng.randint(0, 9) for _ in range(7)]
    first8[0] = rng.choice([0, 1, 2])  # Federal Reserve district prefixes 01-12
    partial = 3 * (first8[0] + first8[3] + first8[6]) + 7 * (first8[1] + first8[4] + first8[7])
    partial += first8[2] + first8[5]
    check = (10 - partial % 10) % 10
    return "".join(map(str, first8)) + str(check)


def aba_valid(value: str) -> bool:
    if len(value) != 9 or not value.isdigit():
        return False
    d = [int(c) for c in value]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.digits, k=n))


def mask_pan(pan: str) -> str:
    """OBIE-style masked card identification: only the last four digits shown."""
    return "*" * (len(pan) - 4) + pan[-4:]
