"""Command-line tools: mechanism builder, example circuit, doctor, plots, modulefiles."""
