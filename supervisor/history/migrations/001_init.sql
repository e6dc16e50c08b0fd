-- Unqualified names: the tables land in the first schema of the connection's search_path
-- (public by default), next to the worker's switchyard_repos.
CREATE TABLE switchyard_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  kind text NOT NULL,
  pool text,
  worker text,
  reason text,
  detail jsonb
);
CREATE INDEX switchyard_events_at_idx ON switchyard_events (at);

CREATE TABLE switchyard_lane_minutes (
  minute timestamptz NOT NULL,
  lane text NOT NULL,
  requests integer NOT NULL,
  errors integer NOT NULL,
  p50_ms double precision NOT NULL,
  p99_ms double precision NOT NULL,
  queue_peak integer NOT NULL,
  PRIMARY KEY (minute, lane)
);
