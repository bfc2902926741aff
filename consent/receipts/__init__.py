"""Real-time receipts: bank events → fetch what changed with the consent's token → minimized
receipts in the outbox (see :mod:`consent.receipts.worker`)."""
