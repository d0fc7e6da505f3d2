"""Tasks: something someone must do about a record, by a due date (待办)."""
