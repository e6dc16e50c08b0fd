-- On a site of several hosts each supervisor records its own proxy's minutes into the one
-- database: a row per proxy, so two proxies' minutes of the same lane no longer overwrite each
-- other. Rows from before belong to the one proxy there was ('').
ALTER TABLE switchyard_lane_minutes ADD COLUMN proxy text NOT NULL DEFAULT '';
ALTER TABLE switchyard_lane_minutes DROP CONSTRAINT switchyard_lane_minutes_pkey;
ALTER TABLE switchyard_lane_minutes ADD PRIMARY KEY (minute, lane, proxy);
