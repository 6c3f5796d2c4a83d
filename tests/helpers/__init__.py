"""Scripts run as child processes by the crash and concurrency tests."""
