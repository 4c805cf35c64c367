CREATE TABLE `event_values` (
	`column` text NOT NULL,
	`value` text NOT NULL,
	PRIMARY KEY(`column`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
-- Hand-written below (and the WITHOUT ROWID tables, which drizzle-kit does not generate). The dashboard's filter
-- lists move from the four low-cardinality indexes to event_values, and the timeline finds a filter's events
-- through the rollups and the ts_ms index: each index cost a page or two of every commit (a lone call's
-- commit wrote ~17 pages, ~5 of them these indexes). Fill it from those indexes before dropping them.
INSERT INTO `event_values` (`column`, `value`) SELECT DISTINCT 'provider', `provider` FROM `events` WHERE `provider` IS NOT NULL;
--> statement-breakpoint
INSERT INTO `event_values` (`column`, `value`) SELECT DISTINCT 'model', `model` FROM `events` WHERE `model` IS NOT NULL;
--> statement-breakpoint
INSERT INTO `event_values` (`column`, `value`) SELECT DISTINCT 'process_name', `process_name` FROM `events` WHERE `process_name` IS NOT NULL;
--> statement-breakpoint
INSERT INTO `event_values` (`column`, `value`) SELECT DISTINCT 'event_type', `event_type` FROM `events`;
--> statement-breakpoint
-- model_answers per hour: a timeline filtered on an answering model (a dated snapshot) finds its hours here.
-- Recounted from the events as 0003 counted them: a response whose model differs from its call's.
DROP TABLE `model_answers`;
--> statement-breakpoint
CREATE TABLE `model_answers` (
	`bucket_ms` integer NOT NULL,
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`response_model` text NOT NULL,
	`responses` integer NOT NULL,
	`last_ms` integer NOT NULL,
	PRIMARY KEY(`bucket_ms`, `provider`, `model`, `response_model`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `model_answers` (`bucket_ms`, `provider`, `model`, `response_model`, `responses`, `last_ms`)
SELECT (ts_ms / 3600000) * 3600000, coalesce(provider, ''), call_model, model, count(*), max(ts_ms) FROM `events`
WHERE event_type = 'ai.response' AND call_model IS NOT NULL AND model IS NOT NULL AND model <> call_model
GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
DROP INDEX `events_event_type_idx`;--> statement-breakpoint
DROP INDEX `events_provider_idx`;--> statement-breakpoint
DROP INDEX `events_model_idx`;--> statement-breakpoint
DROP INDEX `events_process_name_idx`;
