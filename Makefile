# Benchmarks apart from the tests (BENCHMARKS.md); `scripts/test` runs the tests.
.PHONY: bench bench-quick

bench:  ## the full matrix, about 15 minutes: writes bench/results/*.json and the table in BENCHMARKS.md
	bench/run

bench-quick:  ## SQLite, one worker, short runs: a few minutes
	bench/run --quick
