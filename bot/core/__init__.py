"""The transport-independent conversation engine: plain records, ports, and the engine.

Nothing in ``bot.core`` imports aiohttp, slack_bolt, torch or faiss: adapters translate
requests into these records, and concrete retrievers, generators and stores plug into the
ports (Protocols) defined in :mod:`bot.core.ports`.
"""
