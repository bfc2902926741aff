"""Merchants, places and money scales the transaction generator draws from.

Amounts are in the GBP-equivalent minor units and scaled per currency by :data:`SCALE`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Merchant:
    name: str  # clean display name
    descriptor: str  # stem of the raw statement descriptor
    mcc: str  # ISO 18245
    category: str
    low: int  # typical amount range, GBP-equivalent minor units
    high: int
    online: bool = False


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    lat: float
    lon: float


# Rough GBP → currency multipliers (to keep amounts plausible, not an FX feed).
SCALE: dict[str, float] = {
    "GBP": 1.0,
    "USD": 1.3,
    "EUR": 1.17,
    "PLN": 5.1,
    "SAR": 4.8,
    "AED": 4.7,
    "MXN": 22.0,
    "CZK": 29.0,
}

CITIES: dict[str, tuple[City, ...]] = {
    "GB": (City("London", "GB", 51.5072, -0.1276), City("Manchester", "GB", 53.4808, -2.2426)),
    "US": (City("New York", "US", 40.7128, -74.006), City("Boston", "US", 42.3601, -71.0589)),
    "PL": (City("Warszawa", "PL", 52.2297, 21.0122), City("Kraków", "PL", 50.0647, 19.945)),
    "SA": (City("Riyadh", "SA", 24.7136, 46.6753), City("Jeddah", "SA", 21.4858, 39.1925)),
    "ES": (City("Barcelona", "ES", 41.3874, 2.1686), City("Málaga", "ES", 36.7213, -4.4214)),
    "MX": (City("Cancún", "MX", 21.1619, -86.8515),),
    "DE": (City("Berlin", "DE", 52.52, 13.405),),
    "CZ": (City("Praha", "CZ", 50.0755, 14.4378),),
    "AE": (City("Dubai", "AE", 25.2048, 55.2708),),
}

# Where each home country's customers go on holiday, and the currency there.
TRIPS: dict[str, tuple[tuple[str, str], ...]] = {
    "GB": (("ES", "EUR"), ("US", "USD")),
    "US": (("MX", "MXN"), ("GB", "GBP")),
    "PL": (("DE", "EUR"), ("CZ", "CZK")),
    "SA": (("AE", "AED"), ("GB", "GBP")),
}

CURRENCY_OF: dict[str, str] = {"GB": "GBP", "US": "USD", "PL": "PLN", "SA": "SAR"}

_GROCERY = "5411"
_RESTAURANT = "5812"
_FAST_FOOD = "5814"
_TRANSIT = "4111"
_TAXI = "4121"
_FUEL = "5541"
_CLOTHES = "5651"
_DEPT = "5311"
_ONLINE = "5942"
_DIGITAL = "5815"
_STREAMING = "4899"
_PHARMACY = "5912"
_HOTEL = "7011"
_AIRLINE = "4511"
_COFFEE = "5814"

LOCAL_MERCHANTS: dict[str, tuple[Merchant, ...]] = {
    "GB": (
        Merchant("Tesco", "TESCO STORES", _GROCERY, "groceries", 800, 9500),
        Merchant("Sainsbury's", "SAINSBURYS S/MKTS", _GROCERY, "groceries", 900, 8800),
        Merchant("Pret A Manger", "PRET A MANGER", _COFFEE, "eating_out", 350, 1200),
        Merchant("Nando's", "NANDOS", _RESTAURANT, "eating_out", 1500, 4800),
        Merchant("TfL", "TFL TRAVEL CH", _TRANSIT, "transport", 170, 900),
        Merchant("Shell", "SHELL", _FUEL, "fuel", 3000, 8000),
        Merchant("Boots", "BOOTS", _PHARMACY, "health", 300, 3500),
        Merchant("Marks & Spencer", "M&S SIMPLY FOOD", _DEPT, "shopping", 600, 12000),
    ),
    "US": (
        Merchant("Whole Foods", "WHOLEFDS MKT", _GROCERY, "groceries", 1200, 14000),
        Merchant("Trader Joe's", "TRADER JOE S", _GROCERY, "groceries", 900, 9000),
        Merchant("Starbucks", "STARBUCKS STORE", _COFFEE, "eating_out", 300, 1100),
        Merchant("Chipotle", "CHIPOTLE ONLINE", _FAST_FOOD, "eating_out", 900, 2600),
        Merchant("MTA", "MTA*NYCT PAYGO", _TRANSIT, "transport", 200, 300),
        Merchant("Chevron", "CHEVRON", _FUEL, "fuel", 2500, 7000),
        Merchant("CVS Pharmacy", "CVS/PHARMACY", _PHARMACY, "health", 400, 4000),
        Merchant("Target", "TARGET", _DEPT, "shopping", 1000, 15000),
    ),
    "PL": (
        Merchant("Biedronka", "JMP S.A. BIEDRONKA", _GROCERY, "groceries", 500, 7000),
        Merchant("Lidl", "LIDL SP. Z O.O.", _GROCERY, "groceries", 600, 7500),
        Merchant("Żabka", "ZABKA Z", _GROCERY, "groceries", 150, 1500),
        Merchant("Costa Coffee", "COSTA COFFEE", _COFFEE, "eating_out", 250, 900),
        Merchant("ZTM Warszawa", "ZTM WARSZAWA", _TRANSIT, "transport", 100, 600),
        Merchant("Orlen", "PKN ORLEN STACJA", _FUEL, "fuel", 2500, 6500),
        Merchant("Rossmann", "ROSSMANN SDP", _PHARMACY, "health", 300, 3000),
        Merchant("Reserved", "LPP RESERVED", _CLOTHES, "shopping", 1500, 12000),
    ),
    "SA": (
        Merchant("Carrefour", "MAF CARREFOUR", _GROCERY, "groceries", 800, 10000),
        Merchant("Panda", "PANDA RETAIL CO", _GROCERY, "groceries", 700, 9000),
        Merchant("Al Baik", "ALBAIK FOOD SYS", _FAST_FOOD, "eating_out", 400, 1500),
        Merchant("Dr. Cafe", "DR CAFE COFFEE", _COFFEE, "eating_out", 300, 1000),
        Merchant("Careem", "CAREEM RIDE", _TAXI, "transport", 300, 2500),
        Merchant("Aldrees", "ALDREES PETROL", _FUEL, "fuel", 1200, 3500),
        Merchant("Nahdi", "NAHDI MEDICAL CO", _PHARMACY, "health", 300, 3000),
        Merchant("Jarir Bookstore", "JARIR BOOKSTORE", _ONLINE, "shopping", 800, 15000),
    ),
}

ONLINE_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Amazon", "AMZN MKTP", "5942", "shopping", 800, 9000, online=True),
    Merchant("Apple", "APPLE.COM/BILL", _DIGITAL, "entertainment", 99, 1500, online=True),
    Merchant("Uber", "UBER *TRIP", _TAXI, "transport", 600, 3500, online=True),
    Merchant("Zalando", "ZALANDO SE", _CLOTHES, "shopping", 2000, 12000, online=True),
)

SUBSCRIPTIONS: tuple[Merchant, ...] = (
    Merchant("Netflix", "NETFLIX.COM", _STREAMING, "subscriptions", 1099, 1099, online=True),
    Merchant("Spotify", "SPOTIFY", _DIGITAL, "subscriptions", 1199, 1199, online=True),
    Merchant("iCloud", "APPLE.COM/BILL ICLOUD", _DIGITAL, "subscriptions", 299, 299, online=True),
)

TRAVEL_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Hotel", "HOTEL", _HOTEL, "travel", 8000, 25000),
    Merchant("Restaurant", "REST", _RESTAURANT, "eating_out", 1500, 7000),
    Merchant("Supermarket", "SUPERMERCADO", _GROCERY, "groceries", 500, 5000),
    Merchant("Taxi", "TAXI", _TAXI, "transport", 800, 4000),
)

AIRLINES: dict[str, Merchant] = {
    "GB": Merchant("British Airways", "BRITISH A", _AIRLINE, "travel", 15000, 60000, online=True),
    "US": Merchant("Delta Air Lines", "DELTA AIR", _AIRLINE, "travel", 20000, 70000, online=True),
    "PL": Merchant("LOT Polish Airlines", "PLL LOT", _AIRLINE, "travel", 10000, 40000, online=True),
    "SA": Merchant("Saudia", "SAUDIA AIRLINES", _AIRLINE, "travel", 15000, 60000, online=True),
}

EMPLOYERS: dict[str, tuple[str, ...]] = {
    "GB": ("ACME ANALYTICS LTD", "BRIGHTWATER NHS TRUST", "NORTHERN RAIL LTD"),
    "US": ("GLOBEX CORP PAYROLL", "INITECH INC PAYROLL", "CITY OF BOSTON"),
    "PL": ("KOMPUTRONIK SA WYNAGRODZENIE", "PKP INTERCITY SA", "UNIWERSYTET WARSZAWSKI"),
    "SA": ("SABIC PAYROLL", "STC SALARY", "MINISTRY OF EDUCATION"),
}

UTILITIES: dict[str, tuple[tuple[str, str, int], ...]] = {
    # (display name, descriptor, GBP-equivalent monthly amount in minor units)
    "GB": (("British Gas", "BRITISH GAS", 9500), ("Thames Water", "THAMES WATER", 3800)),
    "US": (("Con Edison", "CON ED OF NY", 11000), ("Verizon", "VERIZON WIRELESS", 7000)),
    "PL": (("PGE", "PGE OBROT SA", 4500), ("Orange Polska", "ORANGE POLSKA", 1800)),
    "SA": (("Saudi Electricity", "SAUDI ELECTRICITY CO", 5000), ("STC", "STC BILL", 3000)),
}
