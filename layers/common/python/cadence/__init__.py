"""cadence: the domain package shared by every Lambda, the tests and model_build."""
