"""The platform layer: a python-telegram-bot application that holds only opaque handles and never
stores or logs a financial value. Talks to the broker only over HTTP (never imports it).
"""
