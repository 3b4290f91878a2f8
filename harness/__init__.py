"""What the tests and the benchmarks share to drive the app: the browser helpers and the load scenario."""
