"""pfd-launch: runs a pfd_tf parameter-server cluster as local processes, or writes its docker-compose file."""
