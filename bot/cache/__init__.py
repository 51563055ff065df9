"""Caches: what may be shared between replicas (Redis or memory, through aiocache) and what must
stay in this process (answers that grant rights)."""
