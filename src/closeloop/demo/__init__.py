"""The demo organization: a deterministic, realistic data set, and a large tenant for benchmarks."""
