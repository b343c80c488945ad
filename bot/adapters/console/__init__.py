"""The terminal: `coachbot chat --as EMAIL` talks to the real engine through standard input and output."""
