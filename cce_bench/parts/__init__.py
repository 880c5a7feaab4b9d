"""Ground truth offline: scenes whose answer is known (`scenes`), the small CNN the suite trains on them
(`network`, `training`), and the check that a model relies on the parts that define its classes."""
