"""Docker Swarm: render a stack from the Compose files, deploy it, wait for it.

See docs/cluster.md.
"""
