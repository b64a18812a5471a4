"""supportbot: the conversation engine, its adapters (web, Slack, dashboard) and the CLI."""

__version__ = "0.1.0"
