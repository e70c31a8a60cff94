"""Group coordinator: membership, rebalance protocols, assignors, committed offsets."""
