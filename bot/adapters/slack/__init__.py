"""Slack: slack-bolt (async) in HTTP mode or Socket Mode; payload translation in :mod:`.translate`."""

from bot.adapters.slack.adapter import PLATFORM, Bound, SlackAdapter, bind_by_email

__all__ = ["PLATFORM", "Bound", "SlackAdapter", "bind_by_email"]
