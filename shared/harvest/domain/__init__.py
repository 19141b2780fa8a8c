"""The domain core: jobs, their state machine, validation, HLS window logic. Imports no cloud SDK."""
