CREATE TABLE IF NOT EXISTS recommendations_state (
    id INT PRIMARY KEY DEFAULT 1,
    last_collected_at TIMESTAMPTZ,
    last_collection_error TEXT,
    CHECK (id = 1)
);
INSERT INTO recommendations_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
