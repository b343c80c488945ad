"""Storage: tables, engines and sessions, repository functions and migrations.

The only room that writes SQL. Repository functions are synchronous, keyword-only and take a session;
async callers go through :class:`storage.runner.StorageRunner`.
"""
