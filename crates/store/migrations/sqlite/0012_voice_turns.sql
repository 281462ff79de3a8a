-- Voice turns: what the guest's speech and the agent's audio added to a turn, as JSON
-- (transcript confidence, whether the guest interrupted, what they heard, the latency
-- ledger); NULL for typed turns.
ALTER TABLE conversation_turns ADD COLUMN voice TEXT;
