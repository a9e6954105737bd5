"""The Prefect side of metaclip-prefect, as installed: `metaclip_prefect.flows` (flows and the
`metaclip` CLI) and `metaclip_prefect.tasks` (task wrappers).

In the repository they live in the top-level folders flows/ and tasks/; pyproject.toml maps them
here (package-dir), so that installing the project claims no generic top-level module names.
"""
