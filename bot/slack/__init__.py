"""The Slack adapter: a slack-bolt ``AsyncApp`` that translates Slack into engine calls.

It answers direct messages and mentions in threads (one thread, one conversation), shows
progress by updating its message, takes ratings from buttons and reactions, and hands
conversations to the operators' channel. It connects through Socket Mode or the Events API
on ``POST /slack/events`` of the web server. Importing this package imports neither
slack_bolt nor the engine: :mod:`bot.slack.server` does, when the app starts.
"""

from bot.slack.config import SlackConfig

__all__ = ["SlackConfig"]
