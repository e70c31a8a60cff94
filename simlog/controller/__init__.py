"""KRaft-style controller quorum: Raft, metadata log, registration, elections."""
