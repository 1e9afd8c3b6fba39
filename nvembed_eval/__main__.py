"""`python -m nvembed_eval` = `nvembed-eval`."""

from nvembed_eval.cli import main

main()
