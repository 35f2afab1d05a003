from infogan_pl.train import main
from infogan_pl.validation import exit_on_command_line_error

exit_on_command_line_error("config")  # what Hydra itself would refuse: one line, exit 2
main()
