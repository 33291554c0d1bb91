DROP TABLE IF EXISTS recommendations_state;
