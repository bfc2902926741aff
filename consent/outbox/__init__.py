"""Messages to the platform: written transactionally, delivered by a relay with retries."""
