"""The broker's pure core: consent rules, scopes, policies, minimization and the audit chain.

No I/O (except reading policy files), no clock reads (``now`` is passed in), no web framework.
"""
