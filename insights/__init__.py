"""Insights: rep metrics, outcome KPIs, training-outcome linkage, digests, leaderboard and exports."""
