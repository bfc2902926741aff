"""The consent broker: stands on the bank side of the trust boundary and hands the chat platform
only what the user consented to, minimized, for the chat-service purpose, with every access logged.
"""
