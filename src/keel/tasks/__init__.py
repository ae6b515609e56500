"""Jobs on Taskiq: the broker (Redis streams or in-process), the runner, heartbeat, the worker."""
