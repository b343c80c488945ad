"""Chat adapters: each translates one platform's payloads to and from the engine's events."""
