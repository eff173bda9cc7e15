"""Support code shared by the test suites and the benchmark: one helper, one place."""
