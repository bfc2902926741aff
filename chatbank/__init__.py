"""The ``chatbank`` command line: run the whole system or one service."""
