-- The training data schema: the single source of truth for these tables.
--
-- The MySQL image runs this file inside MYSQL_DATABASE (train_data) on first start; the tests run
-- it against MariaDB in a fresh database; forest_mlops.database.apply_schema runs it on MySQL and,
-- transpiled by sqlglot, on SQLite (the embedded local mode). So: no USE, no MySQL-only syntax that
-- sqlglot cannot translate (no column COMMENTs, no inline KEY clauses: indexes are separate
-- CREATE INDEX statements, which apply_schema skips when the index already exists).
-- Times are UTC, written by the application.

-- The course table, with integer types for the integer features and lineage columns.
--
-- Uniqueness rule: a UNIQUE key over the 13 course columns themselves, not over row_hash. The
-- database then enforces "the same record is stored once" on the data it holds, whatever code
-- wrote it (the ingestion, insert_rows, a manual INSERT); a key over an application-computed hash
-- would only be as right as every writer's hashing. With integer types the 13-column key is
-- small (about 50 bytes, against 64 for the hex hash), and InnoDB allows 16 key parts.
-- row_hash (SHA-256 of the canonical typed record, forest_mlops.database.row_hash) is kept as a
-- stable row id: training can use it for deterministic hash-based splits that do not move when
-- the table grows, and the load looks rows up by it before inserting (ascii: a quarter of the
-- index size of utf8mb4).
-- batch_number, group_number and ingestion_run_id say where the row was FIRST collected: a later
-- duplicate is counted in ingestion_log, not stored again.
CREATE TABLE IF NOT EXISTS forest_cover_data (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    Elevation INT NOT NULL,
    Aspect SMALLINT NOT NULL,
    Slope SMALLINT NOT NULL,
    Horizontal_Distance_To_Hydrology INT NOT NULL,
    Vertical_Distance_To_Hydrology INT NOT NULL,
    Horizontal_Distance_To_Roadways INT NOT NULL,
    Hillshade_9am SMALLINT NOT NULL,
    Hillshade_Noon SMALLINT NOT NULL,
    Hillshade_3pm SMALLINT NOT NULL,
    Horizontal_Distance_To_Fire_Points INT NOT NULL,
    Wilderness_Area VARCHAR(16) NOT NULL,
    Soil_Type VARCHAR(8) NOT NULL,
    Cover_Type SMALLINT NOT NULL,
    batch_number SMALLINT NOT NULL,
    group_number SMALLINT NOT NULL,
    ingestion_run_id VARCHAR(255) NOT NULL,
    row_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `timestamp` DATETIME(6) NOT NULL,
    CONSTRAINT uq_forest_cover_data_record UNIQUE (
        Elevation, Aspect, Slope,
        Horizontal_Distance_To_Hydrology, Vertical_Distance_To_Hydrology,
        Horizontal_Distance_To_Roadways,
        Hillshade_9am, Hillshade_Noon, Hillshade_3pm,
        Horizontal_Distance_To_Fire_Points,
        Wilderness_Area, Soil_Type, Cover_Type
    )
) DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_forest_cover_data_batch ON forest_cover_data (group_number, batch_number);
CREATE INDEX ix_forest_cover_data_run ON forest_cover_data (ingestion_run_id);
CREATE INDEX ix_forest_cover_data_row_hash ON forest_cover_data (row_hash);

-- One row per collection attempt and batch served in it.
-- status: 'loaded' (rows went through validate and load; inserted may be 0),
--         'complete' (the API answered "all data collected": the DAG stops collecting this group),
--         'failed' (the API stayed unreachable or broken after the retries; nothing else written).
-- batch_number is NULL when no batch was served ('complete', 'failed').
-- synthetic: the API said its dataset is generated (header X-Data-Synthetic: true); whatever is
-- trained on such rows must say so (forest_mlops.ingestion.holds_synthetic_data).
-- rows_received = rows_inserted + rows_duplicate + rows_rejected for 'loaded' rows; duplicates
-- count both repeats inside the attempt and rows already in forest_cover_data.
-- The rows-per-batch figure: rows_offered (rows the batch has, from the API's GET /batches;
-- NULL when the API does not say), rows_received (rows it served, repeats included),
-- rows_inserted (distinct rows new to forest_cover_data), requests (GET /data calls that
-- served this batch). rows_offered came after the first release: it is the last column, and
-- nullable, so that apply_schema can add it to an existing table (docs/INGESTION.md, upgrade).
CREATE TABLE IF NOT EXISTS ingestion_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ingestion_run_id VARCHAR(255) NOT NULL,
    group_number SMALLINT NOT NULL,
    batch_number SMALLINT NULL,
    requests INT NOT NULL,
    rows_received INT NOT NULL,
    rows_inserted INT NOT NULL,
    rows_duplicate INT NOT NULL,
    rows_rejected INT NOT NULL,
    status VARCHAR(16) NOT NULL,
    synthetic BOOLEAN NOT NULL DEFAULT FALSE,
    message VARCHAR(1000) NULL,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NOT NULL,
    rows_offered INT NULL
) DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_ingestion_log_run ON ingestion_log (ingestion_run_id);
CREATE INDEX ix_ingestion_log_group_status ON ingestion_log (group_number, status);

-- Rows the API served that do not fit forest_mlops.schema, kept as received (JSON) with the
-- reason, so nothing is dropped silently. Written in the same transaction as the good rows.
CREATE TABLE IF NOT EXISTS rejected_rows (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ingestion_run_id VARCHAR(255) NOT NULL,
    group_number SMALLINT NOT NULL,
    batch_number SMALLINT NOT NULL,
    response_index INT NOT NULL,
    row_index INT NOT NULL,
    raw_row TEXT NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    rejected_at DATETIME(6) NOT NULL
) DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_rejected_rows_run ON rejected_rows (ingestion_run_id);

-- Hand-over between the Airflow tasks of one ingestion run, which may run in different pods:
-- XCom carries only the run id and counts, the rows travel through this table.
--   stage 'fetched':   one row per /data response, payload = the response's rows as received;
--   stage 'validated': one row per response, payload = {"valid": [...], "rejected": [...]}.
-- Keyed by (run id, stage, response) so a retried task replaces its own output. The load task
-- deletes the run's rows in the same transaction that lands the data, so a committed load leaves
-- no staging behind and a failed one leaves it for the retry. Runs abandoned before load are
-- removed by the next fetch after a day (forest_mlops.ingestion.staging.STALE_AFTER).
CREATE TABLE IF NOT EXISTS ingestion_staging (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ingestion_run_id VARCHAR(255) NOT NULL,
    stage VARCHAR(16) NOT NULL,
    response_index INT NOT NULL,
    group_number SMALLINT NOT NULL,
    batch_number SMALLINT NOT NULL,
    payload LONGTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    CONSTRAINT uq_ingestion_staging_part UNIQUE (ingestion_run_id, stage, response_index)
) DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_ingestion_staging_created ON ingestion_staging (created_at);

-- Predictions served by the inference service (inference_api.inference_log writes them in the
-- background when INFERENCE_LOG_DATABASE_URL is set), one row per predicted record. The columns
-- are the contract in docs/ARCHITECTURE.md: the 12 features as in forest_cover_data, the
-- predicted class id (cover_type), its probability and the request's model time.
CREATE TABLE IF NOT EXISTS inference_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    predicted_at DATETIME(6) NOT NULL,
    model_name VARCHAR(200) NOT NULL,
    model_version VARCHAR(32) NOT NULL,
    Elevation INT NOT NULL,
    Aspect SMALLINT NOT NULL,
    Slope SMALLINT NOT NULL,
    Horizontal_Distance_To_Hydrology INT NOT NULL,
    Vertical_Distance_To_Hydrology INT NOT NULL,
    Horizontal_Distance_To_Roadways INT NOT NULL,
    Hillshade_9am SMALLINT NOT NULL,
    Hillshade_Noon SMALLINT NOT NULL,
    Hillshade_3pm SMALLINT NOT NULL,
    Horizontal_Distance_To_Fire_Points INT NOT NULL,
    Wilderness_Area VARCHAR(16) NOT NULL,
    Soil_Type VARCHAR(8) NOT NULL,
    cover_type TINYINT NOT NULL,
    probability DOUBLE NOT NULL,
    latency_ms DOUBLE NOT NULL
) DEFAULT CHARSET=utf8mb4;

CREATE INDEX ix_inference_log_predicted_at ON inference_log (predicted_at);
