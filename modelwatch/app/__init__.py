"""The top layer: command line, servers, demo, status and doctor."""
