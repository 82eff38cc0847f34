-- Clips and snapshots uploaded by edges. The edge announces a file (key, size, SHA-256), sends it
-- in parts through the cloud (edges never hold object-store credentials), then completes it; the
-- object is stored under `<tenant>/<site>/<edge key>`.
--
-- `media_objects` is one row per (tenant, site, edge key): idempotent announces find it again, and
-- an upload resumes after an edge cut or a cloud restart from what is recorded here: the backend's
-- multipart upload id (S3) and every part received (with its ETag on S3).
CREATE TABLE media_objects (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    site_id       uuid        NOT NULL,
    edge_id       uuid        NOT NULL,
    -- The edge's key: clips/<camera>/<name>.mp4 or snapshots/<camera>/<name>.jpg.
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 512),
    content_type  text        NOT NULL CHECK (content_type IN ('video/mp4', 'image/jpeg')),
    bytes         bigint      NOT NULL CHECK (bytes > 0),
    sha256        text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    part_size     bigint      NOT NULL CHECK (part_size > 0),
    -- The event that references the file (the detection or ended object), when the edge said.
    event_id      uuid,
    -- The object-store backend's multipart upload id (S3); NULL for the filesystem backend.
    multipart_id  text,
    status        text        NOT NULL DEFAULT 'uploading' CHECK (status IN ('uploading', 'complete')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    UNIQUE (tenant_id, site_id, key),
    UNIQUE (id, tenant_id),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX media_objects_event_idx ON media_objects (tenant_id, event_id) WHERE event_id IS NOT NULL;

CREATE TABLE media_parts (
    tenant_id     uuid        NOT NULL,
    upload_id     uuid        NOT NULL,
    -- 0-based part number.
    part          integer     NOT NULL CHECK (part >= 0),
    bytes         bigint      NOT NULL CHECK (bytes > 0),
    -- The backend's id of the stored part (S3 ETag); empty for the filesystem backend.
    etag          text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, part),
    FOREIGN KEY (upload_id, tenant_id) REFERENCES media_objects (id, tenant_id) ON DELETE CASCADE
);

-- Row-level security, as for every tenant table (see 0003).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['media_objects', 'media_parts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = vigil_current_tenant()) '
                       'WITH CHECK (tenant_id = vigil_current_tenant())', t);
        EXECUTE format('CREATE POLICY system_access ON %I USING (vigil_system_access()) '
                       'WITH CHECK (vigil_system_access())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO vigil_app', t);
    END LOOP;
END
$$;
