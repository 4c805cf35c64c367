CREATE TABLE `event_rollup_day` (
	`bucket_ms` integer NOT NULL,
	`event_type` text NOT NULL,
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`process_name` text NOT NULL,
	`pid` integer NOT NULL,
	`key_prefix` text NOT NULL,
	`key_hash` text NOT NULL,
	`auth_type` text NOT NULL,
	`events` integer NOT NULL,
	`errors` integer NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`cost_usd` real NOT NULL,
	`last_ms` integer NOT NULL,
	`last_rowid` integer NOT NULL,
	PRIMARY KEY(`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_hash`, `key_prefix`, `auth_type`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `event_rollup_hour` (
	`bucket_ms` integer NOT NULL,
	`event_type` text NOT NULL,
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`process_name` text NOT NULL,
	`pid` integer NOT NULL,
	`key_prefix` text NOT NULL,
	`key_hash` text NOT NULL,
	`auth_type` text NOT NULL,
	`events` integer NOT NULL,
	`errors` integer NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`cost_usd` real NOT NULL,
	`last_ms` integer NOT NULL,
	`last_rowid` integer NOT NULL,
	PRIMARY KEY(`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_hash`, `key_prefix`, `auth_type`)
) WITHOUT ROWID;
--> statement-breakpoint
-- Hand-written below (drizzle-kit generates neither triggers nor WITHOUT ROWID): keep both rollups in step
-- with events. The store inserts with ON CONFLICT DO NOTHING, so a replayed event never counts twice.
-- "INSERT ... SELECT ... WHERE true ON CONFLICT": the WHERE is SQLite's documented way to parse an upsert after a SELECT.
CREATE TRIGGER `events_rollup_insert` AFTER INSERT ON `events` BEGIN
  INSERT INTO `event_rollup_hour` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
  SELECT (NEW.ts_ms / 3600000) * 3600000, NEW.event_type, coalesce(NEW.provider, ''), coalesce(NEW.model, ''), coalesce(NEW.process_name, ''),
    coalesce(NEW.pid, -1), coalesce(json_extract(a.auth, '$.key_prefix'), ''), coalesce(json_extract(a.auth, '$.key_hash'), ''),
    coalesce(json_extract(a.auth, '$.type'), ''),
    1, coalesce(NEW.success = 0, 0), coalesce(NEW.input_tokens, 0), coalesce(NEW.output_tokens, 0), coalesce(NEW.cost_usd, 0), NEW.ts_ms, NEW.rowid
  FROM (SELECT CASE
      WHEN NEW.event_type = 'ai.request' THEN json_extract(NEW.json, '$.data.auth')
      WHEN NEW.event_type = 'ai.response' AND NEW.request_id IS NOT NULL THEN
        (SELECT json_extract(r.json, '$.data.auth') FROM `events` r WHERE r.request_id = NEW.request_id AND r.event_type = 'ai.request' LIMIT 1)
    END AS auth) a
  WHERE true
  ON CONFLICT (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_hash`, `key_prefix`, `auth_type`) DO UPDATE SET
    `events` = `events` + 1,
    `errors` = `errors` + excluded.`errors`,
    `input_tokens` = `input_tokens` + excluded.`input_tokens`,
    `output_tokens` = `output_tokens` + excluded.`output_tokens`,
    `cost_usd` = `cost_usd` + excluded.`cost_usd`,
    `last_ms` = max(`last_ms`, excluded.`last_ms`),
    `last_rowid` = max(`last_rowid`, excluded.`last_rowid`);
  INSERT INTO `event_rollup_day` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
  SELECT (NEW.ts_ms / 86400000) * 86400000, NEW.event_type, coalesce(NEW.provider, ''), coalesce(NEW.model, ''), coalesce(NEW.process_name, ''),
    coalesce(NEW.pid, -1), coalesce(json_extract(a.auth, '$.key_prefix'), ''), coalesce(json_extract(a.auth, '$.key_hash'), ''),
    coalesce(json_extract(a.auth, '$.type'), ''),
    1, coalesce(NEW.success = 0, 0), coalesce(NEW.input_tokens, 0), coalesce(NEW.output_tokens, 0), coalesce(NEW.cost_usd, 0), NEW.ts_ms, NEW.rowid
  FROM (SELECT CASE
      WHEN NEW.event_type = 'ai.request' THEN json_extract(NEW.json, '$.data.auth')
      WHEN NEW.event_type = 'ai.response' AND NEW.request_id IS NOT NULL THEN
        (SELECT json_extract(r.json, '$.data.auth') FROM `events` r WHERE r.request_id = NEW.request_id AND r.event_type = 'ai.request' LIMIT 1)
    END AS auth) a
  WHERE true
  ON CONFLICT (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_hash`, `key_prefix`, `auth_type`) DO UPDATE SET
    `events` = `events` + 1,
    `errors` = `errors` + excluded.`errors`,
    `input_tokens` = `input_tokens` + excluded.`input_tokens`,
    `output_tokens` = `output_tokens` + excluded.`output_tokens`,
    `cost_usd` = `cost_usd` + excluded.`cost_usd`,
    `last_ms` = max(`last_ms`, excluded.`last_ms`),
    `last_rowid` = max(`last_rowid`, excluded.`last_rowid`);
END;
--> statement-breakpoint
-- Databases written before this migration: count what they already hold (hours from the events, days from the hours).
INSERT INTO `event_rollup_hour` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
SELECT (e.ts_ms / 3600000) * 3600000, e.event_type, coalesce(e.provider, ''), coalesce(e.model, ''), coalesce(e.process_name, ''),
  coalesce(e.pid, -1), coalesce(json_extract(e.auth, '$.key_prefix'), ''), coalesce(json_extract(e.auth, '$.key_hash'), ''),
  coalesce(json_extract(e.auth, '$.type'), ''),
  count(*), sum(coalesce(e.success = 0, 0)), sum(coalesce(e.input_tokens, 0)), sum(coalesce(e.output_tokens, 0)), sum(coalesce(e.cost_usd, 0)),
  max(e.ts_ms), max(e.rowid)
FROM (SELECT x.rowid AS rowid, x.*, CASE
    WHEN x.event_type = 'ai.request' THEN json_extract(x.json, '$.data.auth')
    WHEN x.event_type = 'ai.response' AND x.request_id IS NOT NULL THEN
      (SELECT json_extract(r.json, '$.data.auth') FROM `events` r WHERE r.request_id = x.request_id AND r.event_type = 'ai.request' LIMIT 1)
  END AS auth FROM `events` x) e
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
--> statement-breakpoint
INSERT INTO `event_rollup_day` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
SELECT (bucket_ms / 86400000) * 86400000, event_type, provider, model, process_name, pid, key_prefix, key_hash, auth_type,
  sum(events), sum(errors), sum(input_tokens), sum(output_tokens), sum(cost_usd), max(last_ms), max(last_rowid)
FROM `event_rollup_hour` GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
