-- Device commands are delivered to the site's edge, which executes them and reports the outcome.
-- queued → delivered (the edge fetched it) → done | failed | expired; a command not acknowledged
-- 30 s after delivery is delivered again (the edge executes each id once), and none is delivered
-- after `expires_at`: an unlock requested during an outage must not happen hours later.
ALTER TABLE device_commands
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN acked_at   timestamptz,
    ADD COLUMN result     text;
UPDATE device_commands SET expires_at = created_at + interval '5 minutes' WHERE expires_at IS NULL;
ALTER TABLE device_commands
    ALTER COLUMN expires_at SET NOT NULL,
    ALTER COLUMN expires_at SET DEFAULT now() + interval '5 minutes',
    ADD CONSTRAINT device_commands_status_check
        CHECK (status IN ('queued', 'delivered', 'done', 'failed', 'expired'));
CREATE INDEX device_commands_site_pending_idx ON device_commands (site_id, created_at)
    WHERE status IN ('queued', 'delivered');

-- Heartbeats: each edge reports its health (versions, cameras, spool depth per class, oldest unsent
-- event, disk free) every minute; the latest one is kept with the edge.
ALTER TABLE edges
    ADD COLUMN last_heartbeat_at timestamptz,
    ADD COLUMN health            jsonb;

-- Stream start/stop requests are delivered to the site's edge the same way (no expiry: the latest
-- request is the wanted state of the camera's analysis).
ALTER TABLE stream_commands
    ADD COLUMN delivered_at timestamptz,
    ADD COLUMN acked_at     timestamptz,
    ADD COLUMN result       text,
    ADD CONSTRAINT stream_commands_status_check
        CHECK (status IN ('queued', 'delivered', 'done', 'failed', 'expired'));
