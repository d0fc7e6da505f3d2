"""Daily and weekly reports (CN-6, 日报/周报): figures filled in from the day's records, submission rules, reminders."""
