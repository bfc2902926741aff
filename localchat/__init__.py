"""A local stand-in for Telegram's Bot API servers, with a web chat page, so the whole system runs
and is tested with no Telegram account and no network.
"""
