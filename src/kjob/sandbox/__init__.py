"""A run on this machine, laid out and isolated as Kaggle runs it: every backend that runs notebooks uses it."""
