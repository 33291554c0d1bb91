ALTER TABLE recommendations_state DROP COLUMN IF EXISTS last_collection_owner_id;
