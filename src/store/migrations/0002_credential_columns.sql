ALTER TABLE `events` ADD `key_prefix` text;--> statement-breakpoint
ALTER TABLE `events` ADD `key_hash` text;--> statement-breakpoint
ALTER TABLE `events` ADD `auth_type` text;--> statement-breakpoint
-- Hand-written below. The credential each event is counted under moves from the rollup trigger (which
-- json_extract-ed the whole event, and for a response looked up and parsed its request's JSON, on every
-- insert) to the events row itself: the store fills these three columns as it inserts.
-- Backfill first, with the 0001 trigger's semantics, so the columns say what the rollups already counted:
-- a request's own $.data.auth; a response's from the first request with its request_id stored before it.
UPDATE `events` SET
  `key_prefix` = json_extract(json_extract(`json`, '$.data.auth'), '$.key_prefix'),
  `key_hash` = json_extract(json_extract(`json`, '$.data.auth'), '$.key_hash'),
  `auth_type` = json_extract(json_extract(`json`, '$.data.auth'), '$.type')
WHERE `event_type` = 'ai.request';
--> statement-breakpoint
UPDATE `events` SET (`key_prefix`, `key_hash`, `auth_type`) = (
  SELECT r.`key_prefix`, r.`key_hash`, r.`auth_type` FROM `events` r
  WHERE r.`request_id` = `events`.`request_id` AND r.`event_type` = 'ai.request' AND r.rowid < `events`.rowid
  ORDER BY r.rowid LIMIT 1)
WHERE `event_type` = 'ai.response' AND `request_id` IS NOT NULL;
--> statement-breakpoint
DROP TRIGGER `events_rollup_insert`;
--> statement-breakpoint
-- Same rollup rows as 0001's trigger (buckets, "" / -1 for unknown, the ON CONFLICT sums), credentials read
-- from the new row's columns.
CREATE TRIGGER `events_rollup_insert` AFTER INSERT ON `events` BEGIN
  INSERT INTO `event_rollup_hour` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
  VALUES ((NEW.ts_ms / 3600000) * 3600000, NEW.event_type, coalesce(NEW.provider, ''), coalesce(NEW.model, ''), coalesce(NEW.process_name, ''),
    coalesce(NEW.pid, -1), coalesce(NEW.key_prefix, ''), coalesce(NEW.key_hash, ''), coalesce(NEW.auth_type, ''),
    1, coalesce(NEW.success = 0, 0), coalesce(NEW.input_tokens, 0), coalesce(NEW.output_tokens, 0), coalesce(NEW.cost_usd, 0), NEW.ts_ms, NEW.rowid)
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
  VALUES ((NEW.ts_ms / 86400000) * 86400000, NEW.event_type, coalesce(NEW.provider, ''), coalesce(NEW.model, ''), coalesce(NEW.process_name, ''),
    coalesce(NEW.pid, -1), coalesce(NEW.key_prefix, ''), coalesce(NEW.key_hash, ''), coalesce(NEW.auth_type, ''),
    1, coalesce(NEW.success = 0, 0), coalesce(NEW.input_tokens, 0), coalesce(NEW.output_tokens, 0), coalesce(NEW.cost_usd, 0), NEW.ts_ms, NEW.rowid)
  ON CONFLICT (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_hash`, `key_prefix`, `auth_type`) DO UPDATE SET
    `events` = `events` + 1,
    `errors` = `errors` + excluded.`errors`,
    `input_tokens` = `input_tokens` + excluded.`input_tokens`,
    `output_tokens` = `output_tokens` + excluded.`output_tokens`,
    `cost_usd` = `cost_usd` + excluded.`cost_usd`,
    `last_ms` = max(`last_ms`, excluded.`last_ms`),
    `last_rowid` = max(`last_rowid`, excluded.`last_rowid`);
END;
