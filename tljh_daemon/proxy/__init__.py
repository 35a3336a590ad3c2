"""The proxy: Traefik configured through its file provider."""
