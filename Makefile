# The two commands of the README. Each sets up what is missing first.
.PHONY: demo test bench setup
demo:
	scripts/demo.sh
test:
	scripts/test.sh
bench:
	scripts/setup.sh && .venv/bin/python bench/run_all.py
setup:
	scripts/setup.sh
