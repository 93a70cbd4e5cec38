"""The shared core every stage may import: one Settings object (bip.config) and progress
reporting (bip.progress). It imports no stage; the command line lives above all stages in cli/."""
