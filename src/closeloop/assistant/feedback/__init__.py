"""Use is training (AST-5): the reps' verdicts on the assistant's suggestions, how they move later
rankings, and the weekly adoption report."""
