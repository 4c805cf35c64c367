CREATE TABLE `model_answers` (
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`response_model` text NOT NULL,
	`responses` integer NOT NULL,
	`last_ms` integer NOT NULL,
	PRIMARY KEY(`provider`, `model`, `response_model`)
) WITHOUT ROWID;
--> statement-breakpoint
ALTER TABLE `events` ADD `call_model` text;--> statement-breakpoint
-- Hand-written below. One call, one model: the rollups counted a request under the model it asked for and
-- its response under the model that answered, so a call to an alias answered by a dated snapshot
-- (gpt-4o-mini → gpt-4o-mini-2024-07-18) was split over two inventory rows (requests on one, tokens and
-- cost on the other). From here on an event is counted under its call's model: a request's own, a
-- response's request's (the first ai.request with its request_id stored before it), else its own.
UPDATE `events` SET `call_model` = `model` WHERE `event_type` = 'ai.request';
--> statement-breakpoint
UPDATE `events` SET `call_model` = coalesce((
  SELECT r.`model` FROM `events` r
  WHERE r.`request_id` = `events`.`request_id` AND r.`event_type` = 'ai.request' AND r.rowid < `events`.rowid
  ORDER BY r.rowid LIMIT 1), `model`)
WHERE `event_type` = 'ai.response';
--> statement-breakpoint
DROP TRIGGER `events_rollup_insert`;
--> statement-breakpoint
-- 0002's trigger with the model read as coalesce(call_model, model), and the answering model recorded
-- beside the requested one when they differ.
CREATE TRIGGER `events_rollup_insert` AFTER INSERT ON `events` BEGIN
  INSERT INTO `event_rollup_hour` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
  VALUES ((NEW.ts_ms / 3600000) * 3600000, NEW.event_type, coalesce(NEW.provider, ''), coalesce(NEW.call_model, NEW.model, ''), coalesce(NEW.process_name, ''),
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
  VALUES ((NEW.ts_ms / 86400000) * 86400000, NEW.event_type, coalesce(NEW.provider, ''), coalesce(NEW.call_model, NEW.model, ''), coalesce(NEW.process_name, ''),
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
  INSERT INTO `model_answers` (`provider`, `model`, `response_model`, `responses`, `last_ms`)
  SELECT coalesce(NEW.provider, ''), NEW.call_model, NEW.model, 1, NEW.ts_ms
  WHERE NEW.event_type = 'ai.response' AND NEW.call_model IS NOT NULL AND NEW.model IS NOT NULL AND NEW.model <> NEW.call_model
  ON CONFLICT (`provider`, `model`, `response_model`) DO UPDATE SET
    `responses` = `responses` + 1,
    `last_ms` = max(`last_ms`, excluded.`last_ms`);
END;
--> statement-breakpoint
-- Recount what the database already holds under the new key (hours from the events, days from the hours).
DELETE FROM `event_rollup_hour`;
--> statement-breakpoint
DELETE FROM `event_rollup_day`;
--> statement-breakpoint
INSERT INTO `event_rollup_hour` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
SELECT (ts_ms / 3600000) * 3600000, event_type, coalesce(provider, ''), coalesce(call_model, model, ''), coalesce(process_name, ''),
  coalesce(pid, -1), coalesce(key_prefix, ''), coalesce(key_hash, ''), coalesce(auth_type, ''),
  count(*), sum(coalesce(success = 0, 0)), sum(coalesce(input_tokens, 0)), sum(coalesce(output_tokens, 0)), sum(coalesce(cost_usd, 0)),
  max(ts_ms), max(rowid)
FROM `events`
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
--> statement-breakpoint
INSERT INTO `event_rollup_day` (`bucket_ms`, `event_type`, `provider`, `model`, `process_name`, `pid`, `key_prefix`, `key_hash`, `auth_type`,
    `events`, `errors`, `input_tokens`, `output_tokens`, `cost_usd`, `last_ms`, `last_rowid`)
SELECT (bucket_ms / 86400000) * 86400000, event_type, provider, model, process_name, pid, key_prefix, key_hash, auth_type,
  sum(events), sum(errors), sum(input_tokens), sum(output_tokens), sum(cost_usd), max(last_ms), max(last_rowid)
FROM `event_rollup_hour` GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
--> statement-breakpoint
INSERT INTO `model_answers` (`provider`, `model`, `response_model`, `responses`, `last_ms`)
SELECT coalesce(provider, ''), call_model, model, count(*), max(ts_ms) FROM `events`
WHERE event_type = 'ai.response' AND call_model IS NOT NULL AND model IS NOT NULL AND model <> call_model
GROUP BY 1, 2, 3;
