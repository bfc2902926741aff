"""The bot's own storage: handles, language, conversation state and de-duplication ids only."""
