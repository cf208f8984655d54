# The two commands of the README. Each sets up what is missing first.
.PHONY: demo test bench setup
demo:
	scripts/demo.sh
test:
	scripts/test.sh
bench:
	scripts/bench.sh
setup:
	scripts/setup.sh
