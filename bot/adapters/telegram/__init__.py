"""The Telegram adapter (python-telegram-bot 22.x): pure payload translation and the running adapter."""
