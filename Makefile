# Common commands (see README for the two set-up commands).
.PHONY: install test fast lint format demo bench mutation

install:
	pip install torch==2.13.0 -e '.[test]'

test:
	python -m pytest -q

fast:
	python -m pytest -q -m "not slow"

lint:
	ruff check . && ruff format --check .

format:
	ruff format . && ruff check --fix .

demo:
	rsgn demo

bench:
	python studies/sparse_vs_dense/bench.py

mutation:
	OMP_NUM_THREADS=1 python tools/mutation.py --all
