"""The machinery of a run: device and seeds (runtime), the resumable output folder (run_folder), the
shared skeleton and batch loop (engine), sharding over processes (distributed), timing."""
