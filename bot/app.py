"""The Application: python-telegram-bot wired with chatbank's handlers, in one place."""

from __future__ import annotations

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.context import SERVICES, ChatApp, ChatContext, Services, texts
from bot.handlers import (
    alerts,
    basics,
    cards,
    consents,
    errors,
    guard,
    insights,
    link,
    privacy,
    reading,
    receipts,
    spending,
    support,
    talk,
    text,
)
from bot.handlers.common import answer_button, say
from bot.i18n import LANGUAGES, tr
from bot.store import repo, shared_conversations
from bot.store.persistence import SqlPersistence
from bot.telegram_http import AiohttpRequest

COMMANDS = (
    "link",
    "balance",
    "transactions",
    "insights",
    "unfreeze",
    "support",
    "receipts",
    "consents",
    "privacy",
    "language",
    "timezone",
    "help",
    "cancel",
)


def command_descriptions(language: str) -> list[BotCommand]:
    t = tr(language)
    about = {
        "link": t._("link a bank"),
        "balance": t._("balances of your linked accounts"),
        "transactions": t._("recent transactions, with filters"),
        "insights": t._("spending by category, with a chart"),
        "unfreeze": t._("unfreeze a card"),
        "support": t._("talk to a person at your bank"),
        "receipts": t._("receipts for card payments, quiet hours"),
        "consents": t._("what you shared, and revoke it"),
        "privacy": t._("what I hold, the access log, export or delete"),
        "language": t._("change language"),
        "timezone": t._("your time zone, for the times I show"),
        "help": t._("what I can do"),
        "cancel": t._("stop what we are doing"),
    }
    return [BotCommand(name, about[name]) for name in COMMANDS]


async def _post_init(application: ChatApp) -> None:
    """Publish the command menu in every language; schedule the hourly clean-up."""
    for language in LANGUAGES:
        code = None if language == "en" else language
        await application.bot.set_my_commands(command_descriptions(language), language_code=code)
    if application.job_queue is not None:
        application.job_queue.run_repeating(prune_seen, interval=3600, first=60, name="prune")


KEEP_SEEN_S = 7 * 24 * 3600  # the broker retries for far less; then ids and nonces may go


async def prune_seen(context: ChatContext) -> None:
    """Forget de-duplication ids and nonces older than a week."""
    services = context.services
    await repo.prune_seen(services.sessions, int(services.clock().timestamp()) - KEEP_SEEN_S)


async def stale_button(update: Update, context: ChatContext) -> None:
    """A button from a flow that has ended (e.g. an old /link message)."""
    await answer_button(update)
    t = await texts(update, context)
    await say(update, t.message(t._("This step is out of date. Start again with /link.")))


def file_base_url(api_base_url: str) -> str:
    """``…/bot`` → ``…/file/bot``, as Telegram lays its URLs out."""
    head, _, _ = api_base_url.rstrip("/").rpartition("/bot")
    return f"{head}/file/bot"


def build_application(services: Services) -> ChatApp:
    settings = services.settings
    builder = (
        ApplicationBuilder()
        .token(settings.token.get_secret_value())
        .base_url(settings.api_base_url)
        .base_file_url(file_base_url(settings.api_base_url))
        .context_types(ContextTypes(context=ChatContext))
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .persistence(SqlPersistence(services.sessions))
        .rate_limiter(AIORateLimiter(overall_max_rate=settings.max_messages_per_s, max_retries=3))
        # Bot API calls over aiohttp: httpx cost several times the CPU a call (bot.telegram_http)
        .request(AiohttpRequest())
        .post_init(_post_init)
        # on stop, PTB asks getUpdates once more while the cancelled long poll may still hold
        # the pool's only connection: wait for it rather than fail the clean-up (PTB's own
        # transport and pool size for the long poll, as before; with .request() set, PTB refuses
        # .get_updates_pool_timeout(), so the request is built here)
        .get_updates_request(
            HTTPXRequest(connection_pool_size=1, pool_timeout=settings.poll_timeout_s + 5.0)
        )
    )
    if settings.mode == "webhook":
        builder = builder.updater(None)
    application: ChatApp = builder.build()
    application.bot_data[SERVICES] = services
    application.add_handler(TypeHandler(Update, guard.private_only), group=-1)
    # a full card number is deleted wherever it is typed, even in the middle of a flow
    application.add_handler(MessageHandler(support.CardNumber(), support.card_number))
    application.add_handler(link.conversation(text.IntentIs("link"), settings.link_timeout_s))
    for name, callback in (
        ("start", basics.start),
        ("help", basics.help_command),
        ("language", basics.language),
        ("timezone", basics.timezone),
        ("balance", reading.balance),
        ("transactions", reading.transactions),
        ("insights", insights.insights),
        ("consents", consents.show),
        ("privacy", privacy.show),
        ("freeze", cards.freeze_command),
        ("unfreeze", cards.unfreeze_command),
        ("receipts", receipts.command),
        ("quiet", receipts.quiet),
        ("cancel", basics.cancel),
        ("support", support.start),
    ):
        application.add_handler(CommandHandler(name, callback))
    for pattern, callback in (
        (r"^lang:", basics.choose_language),
        (r"^tx:", reading.transactions_button),
        (r"^sp:", spending.list_button),
        (r"^in:", insights.button),
        (r"^al:", alerts.answer),
        (r"^cd:", cards.button),
        (r"^rc:", receipts.button),
        (r"^cs:", consents.button),
        (r"^pv:", privacy.button),
        (r"^cl:", text.clarified),
        (r"^lk:", stale_button),
        (r"^hs:", support.button),
    ):
        application.add_handler(CallbackQueryHandler(callback, pattern=pattern))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text.free_text))
    application.add_handler(MessageHandler(filters.COMMAND, talk.unknown_command))
    shared_conversations.install(application)
    application.add_error_handler(errors.on_error)
    return application
