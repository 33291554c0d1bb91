ALTER TABLE recommendations_state ADD COLUMN IF NOT EXISTS last_collection_owner_id UUID;
