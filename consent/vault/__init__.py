"""Envelope encryption: a versioned key-encryption key wraps one data key per consent."""
