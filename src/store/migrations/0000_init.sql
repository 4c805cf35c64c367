CREATE TABLE `events` (
	`event_id` text PRIMARY KEY NOT NULL,
	`ts` text NOT NULL,
	`ts_ms` integer NOT NULL,
	`event_type` text NOT NULL,
	`provider` text,
	`model` text,
	`pid` integer,
	`process_name` text,
	`request_id` text,
	`conn_id` text,
	`success` integer,
	`input_tokens` integer,
	`output_tokens` integer,
	`cost_usd` real,
	`completeness` text,
	`json` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_ts_ms_idx` ON `events` (`ts_ms`);--> statement-breakpoint
CREATE INDEX `events_event_type_idx` ON `events` (`event_type`);--> statement-breakpoint
CREATE INDEX `events_provider_idx` ON `events` (`provider`);--> statement-breakpoint
CREATE INDEX `events_model_idx` ON `events` (`model`);--> statement-breakpoint
CREATE INDEX `events_process_name_idx` ON `events` (`process_name`);--> statement-breakpoint
CREATE INDEX `events_request_id_idx` ON `events` (`request_id`);