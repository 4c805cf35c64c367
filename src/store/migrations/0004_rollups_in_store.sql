-- Hand-written. The rollups (event_rollup_hour / _day, model_answers) are now summed by the store per insert
-- batch and written as one upsert per key (src/store/rollups.ts), with the same keys and sums as 0003's
-- trigger, which did two or three upserts for every inserted event.
DROP TRIGGER `events_rollup_insert`;
