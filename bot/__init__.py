"""The bot: conversation engine, graders, chat adapters, settings, HTTP app, CLI and composition root."""
