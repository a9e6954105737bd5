"""Development tools that do not ship with the package: fixture, demo and benchmark writers."""
