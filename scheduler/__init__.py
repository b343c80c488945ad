"""Scheduler: the memory model, session planner, delivery outbox and dispatcher, nudges and digest timing."""
