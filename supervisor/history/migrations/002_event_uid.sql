-- Each event carries an id made when it is recorded, so that re-sending a batch whose commit
-- reached the server but whose answer was lost (a connection cut at the wrong moment) inserts
-- nothing twice. Rows written before this migration have none; a unique index allows many NULLs.
ALTER TABLE switchyard_events ADD COLUMN uid uuid;
CREATE UNIQUE INDEX switchyard_events_uid_idx ON switchyard_events (uid);
