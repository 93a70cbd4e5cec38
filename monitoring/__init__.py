"""Monitoring the served model without waiting for outcomes: the reference profile logged at
training, the window of what the service scored, drift against the profile, label-free
performance estimates, and `bip monitor` comparing them with outcomes once they arrive."""
