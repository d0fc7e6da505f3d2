"""Targets, leaderboards and daily/weekly reports (CN-6, 目标/排行榜/日报周报)."""
