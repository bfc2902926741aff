"""A local stand-in for Telegram's Bot API servers, with a web chat page, so the whole system runs
and is tested with no Telegram account and no network.

Modules: ``app`` builds the aiohttp application; ``botapi`` answers the Bot API methods PTB uses
(with Telegram's 400/401/404/409/429 errors, see ``errors``); ``markup`` checks HTML parse mode,
text length and button data as Telegram does; ``flood`` is the per-chat and global flood
control; ``webhook`` delivers updates to a webhook with Telegram's retry behaviour; ``testapi``
is the human side under /api (send, press, read, wait, and the ``/api/flood`` switch);
``page`` and ``static/`` are the chat page, which renders bot HTML through an allow-list
sanitizer; ``testing.ChatDriver`` drives a chat from tests.
"""
