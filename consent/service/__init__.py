"""Use cases of the broker: they glue the pure domain, the vault, storage and the bank client."""
