ALTER TABLE recommendations_state ADD COLUMN IF NOT EXISTS last_collection_started_at TIMESTAMPTZ;
