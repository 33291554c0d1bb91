DROP TABLE IF EXISTS job_results;
