-- Enrolment: an admin creates a one-time claim code for a site; an installer types it into the
-- edge, which exchanges it (once) for its own edge token.
--
-- Codes are stored only as the SHA-256 of their canonical form (12 characters, no dashes).
-- A code is claimed and the edge created in one statement (see `cloud-store` `enrol_edge`), so two
-- edges racing with one code get one edge between them.
-- (0005 and 0006 are used by other branches; sqlx applies whichever of them are missing in order.)

CREATE TABLE claim_codes (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    site_id     uuid        NOT NULL,
    code_hash   bytea       NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    -- The edge the code created (no foreign key: a revoked or deleted edge keeps the audit trail).
    edge_id     uuid,
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE,
    CHECK ((used_at IS NULL) = (edge_id IS NULL))
);
CREATE INDEX claim_codes_site_idx ON claim_codes (tenant_id, site_id);

-- What the edge said about itself when it enrolled (hardware, software version), and when.
ALTER TABLE edges
    ADD COLUMN enrolled_at timestamptz,
    ADD COLUMN info        jsonb;

ALTER TABLE claim_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE claim_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON claim_codes USING (tenant_id = vigil_current_tenant())
    WITH CHECK (tenant_id = vigil_current_tenant());
CREATE POLICY system_access ON claim_codes USING (vigil_system_access()) WITH CHECK (vigil_system_access());
GRANT SELECT, INSERT, UPDATE, DELETE ON claim_codes TO vigil_app;
