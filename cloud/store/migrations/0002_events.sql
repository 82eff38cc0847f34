-- Events uploaded by edges, partitioned by the time they happened.
--
-- Idempotency: an event replayed by an edge carries the same id and occurred_at, so the primary
-- key (occurred_at, id) plus `INSERT .. ON CONFLICT DO NOTHING` stores it once. The key leads with
-- occurred_at because a partitioned table's unique keys must contain the partition column.
--
-- tenant_id, site_id and edge_id are copied from the authenticated edge, never from the request;
-- they carry no foreign keys so that ingest does not pay three lookups per row.
--
-- Partitioning:
--   * TimescaleDB when the server offers it (and `vigil.partitioning` is not set to 'native'):
--     a hypertable on occurred_at with daily chunks, managed by TimescaleDB;
--   * otherwise native range partitioning: daily partitions events_pYYYYMMDD created ahead of
--     time by vigil_ensure_event_partitions(), and events_default catching everything outside
--     them (far past or future edge clocks), so an insert never fails for lack of a partition.

DO $$
DECLARE
    cols constant text := $cols$
        id           uuid        NOT NULL,
        tenant_id    uuid        NOT NULL,
        site_id      uuid        NOT NULL,
        edge_id      uuid        NOT NULL,
        zone         text,
        source_kind  text        NOT NULL,
        source_id    text        NOT NULL,
        kind         text        NOT NULL,
        occurred_at  timestamptz NOT NULL,
        received_at  timestamptz NOT NULL DEFAULT now(),
        payload      jsonb       NOT NULL,
        PRIMARY KEY (occurred_at, id)
    $cols$;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND coalesce(current_setting('vigil.partitioning', true), '') <> 'native' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE format('CREATE TABLE events (%s)', cols);
        PERFORM create_hypertable('events', 'occurred_at',
                                  chunk_time_interval => interval '1 day',
                                  create_default_indexes => false);
    ELSE
        EXECUTE format('CREATE TABLE events (%s) PARTITION BY RANGE (occurred_at)', cols);
        CREATE TABLE events_default PARTITION OF events DEFAULT;
    END IF;
END
$$;

-- Listing a tenant's events newest first (keyset pagination on (occurred_at, id)).
CREATE INDEX events_tenant_time_idx ON events (tenant_id, occurred_at DESC, id DESC);
-- Filtering by kind.
CREATE INDEX events_tenant_kind_time_idx ON events (tenant_id, kind, occurred_at DESC);
-- Filtering by site.
CREATE INDEX events_site_time_idx ON events (site_id, occurred_at DESC);

-- Creates the missing daily partitions events_pYYYYMMDD (UTC days) for from_day..=to_day and
-- returns how many it created. A no-op returning 0 when events is not natively partitioned
-- (TimescaleDB). A day whose rows already sit in events_default is skipped (its rows stay there):
-- attaching the partition would violate the default partition's constraint. Safe to run
-- concurrently: a partition created by someone else in between is skipped too.
CREATE FUNCTION vigil_ensure_event_partitions(from_day date, to_day date)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    day      date := from_day;
    part     text;
    created  integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'events'::regclass) THEN
        RETURN 0;
    END IF;
    WHILE day <= to_day LOOP
        part := 'events_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                    part,
                    day::timestamp AT TIME ZONE 'UTC',
                    (day + 1)::timestamp AT TIME ZONE 'UTC');
                created := created + 1;
            EXCEPTION
                WHEN check_violation THEN
                    RAISE NOTICE 'events_default holds rows for %; partition % not created', day, part;
                WHEN duplicate_table OR unique_violation THEN
                    NULL; -- created concurrently
            END;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END
$fn$;
