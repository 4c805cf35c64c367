-- The oldest event each rollup row counts, beside its newest (last_ms): a filter's events in an hour lie between
-- them. Rows counted before this keep the default, "unknown": a filter reads their hours from the hour's start,
-- as before; the store fills first_ms from here on (src/store/rollups.ts). (Hand-written comment: recounting
-- every row from the events would cost a pass over them all, for hours already past.)
ALTER TABLE `event_rollup_day` ADD `first_ms` integer DEFAULT -9007199254740991 NOT NULL;--> statement-breakpoint
ALTER TABLE `event_rollup_hour` ADD `first_ms` integer DEFAULT -9007199254740991 NOT NULL;
