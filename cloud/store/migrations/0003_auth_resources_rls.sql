-- User accounts, sessions, signing keys, the notification outbox, the first resources (zones,
-- cameras, sensors) and tenant isolation by row-level security.
--
-- Row-level security (see ARCHITECTURE.md, "Tenancy"):
--   * Every table holding tenant data has RLS enabled *and forced* (so the table owner is subject
--     to it too) with two permissive policies:
--       tenant_isolation: rows of the tenant named by the transaction-local setting vigil.tenant_id;
--       system_access:    every row, only for a role other than vigil_app that has set the
--                         transaction-local vigil.system = 'on' (credential lookups, provisioning).
--     A query that runs in neither kind of transaction sees no rows at all.
--   * Tenant transactions run as vigil_app (`SET LOCAL ROLE vigil_app`): no login, no BYPASSRLS,
--     never the owner, so the policies always apply to it, whoever the service connects as.
--   * A superuser bypasses RLS whatever the policies say; production connects as an ordinary owner.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vigil_app') THEN
        BEGIN
            CREATE ROLE vigil_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently (roles are cluster-wide; several databases may migrate)
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'vigil_app', 'MEMBER') THEN
        EXECUTE format('GRANT vigil_app TO %I', current_user);
    END IF;
END
$$;

-- The tenant of the current transaction (NULL when none is set: then tenant_isolation matches nothing).
CREATE FUNCTION vigil_current_tenant() RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('vigil.tenant_id', true), '')::uuid $$;

-- Whether the current transaction is an explicit system transaction of the service itself.
CREATE FUNCTION vigil_system_access() RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT current_user <> 'vigil_app' AND coalesce(current_setting('vigil.system', true), '') = 'on' $$;

CREATE TABLE users (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Lowercased; globally unique because login names no tenant.
    email            text        NOT NULL UNIQUE CHECK (email <> '' AND email = lower(email)),
    username         text        NOT NULL CHECK (username <> ''),
    hashed_password  text        NOT NULL,
    full_name        text,
    is_active        boolean     NOT NULL DEFAULT true,
    role             text        NOT NULL CHECK (role IN ('superuser', 'admin', 'security', 'user', 'viewer')),
    is_superuser     boolean     GENERATED ALWAYS AS (role = 'superuser') STORED,
    -- The sites the user may see; NULL means every site of the tenant.
    site_ids         uuid[],
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, username)
);

-- Rotating refresh tokens. A family is one login; each refresh uses its token up and issues the
-- next one in the same family. Presenting a used (or revoked) token revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY,
    family_id   uuid        NOT NULL,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE password_resets (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Messages for the notification service to deliver (transactional outbox).
CREATE TABLE outbox (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    recipient   text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (created_at) WHERE sent_at IS NULL;

-- JWT signing keys (RS256), shared by every replica; not tenant data (no RLS, no vigil_app grant).
CREATE TABLE signing_keys (
    kid          text        PRIMARY KEY,
    private_pem  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);

CREATE TABLE zones (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    site_id     uuid        NOT NULL,
    name        text        NOT NULL CHECK (name <> ''),
    type        text        NOT NULL DEFAULT 'general',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, name),
    UNIQUE (id, tenant_id),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE
);

CREATE TABLE cameras (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    site_id     uuid        NOT NULL,
    zone_id     uuid,
    name        text        NOT NULL CHECK (name <> ''),
    stream_url  text        NOT NULL,
    status      text        NOT NULL DEFAULT 'unknown',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cameras_site_name_key UNIQUE (site_id, name),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE,
    FOREIGN KEY (zone_id, tenant_id) REFERENCES zones (id, tenant_id) ON DELETE SET NULL (zone_id)
);
CREATE INDEX cameras_tenant_idx ON cameras (tenant_id, site_id);

CREATE TABLE sensors (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    site_id     uuid        NOT NULL,
    zone_id     uuid,
    name        text        NOT NULL CHECK (name <> ''),
    type        text        NOT NULL,
    unit        text,
    status      text        NOT NULL DEFAULT 'unknown',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, name),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE,
    FOREIGN KEY (zone_id, tenant_id) REFERENCES zones (id, tenant_id) ON DELETE SET NULL (zone_id)
);

-- Access devices (doors, readers, locks) and other site devices managed through the edge.
CREATE TABLE devices (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    site_id       uuid        NOT NULL,
    zone_id       uuid,
    name          text        NOT NULL CHECK (name <> ''),
    kind          text        NOT NULL CHECK (kind IN ('door', 'reader', 'lock', 'sensor', 'other')),
    status        text        NOT NULL DEFAULT 'unknown',
    config        jsonb       NOT NULL DEFAULT '{}',
    last_seen_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT devices_site_name_key UNIQUE (site_id, name),
    UNIQUE (id, tenant_id),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE,
    FOREIGN KEY (zone_id, tenant_id) REFERENCES zones (id, tenant_id) ON DELETE SET NULL (zone_id)
);

-- Commands for devices, queued for the site's edge to fetch and execute (an outbox per site).
CREATE TABLE device_commands (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    site_id       uuid        NOT NULL,
    device_id     uuid        NOT NULL,
    command       text        NOT NULL,
    params        jsonb       NOT NULL DEFAULT '{}',
    requested_by  uuid,
    status        text        NOT NULL DEFAULT 'queued',
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX device_commands_site_queued_idx ON device_commands (site_id, created_at) WHERE status = 'queued';

-- Stream start/stop requests for cameras, queued for the site's edge like device commands.
CREATE TABLE stream_commands (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    site_id       uuid        NOT NULL,
    camera_id     uuid        NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    action        text        NOT NULL CHECK (action IN ('start', 'stop')),
    requested_by  uuid,
    status        text        NOT NULL DEFAULT 'queued',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_commands_camera_idx ON stream_commands (camera_id, created_at DESC);

-- People and their access credentials (the source of the access document pushed to edges).
-- PINs are stored as given because edges compare them offline; the API never serves them.
CREATE TABLE people (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (name <> ''),
    groups      text[]      NOT NULL DEFAULT '{}',
    enabled     boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, tenant_id)
);

CREATE TABLE credentials (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    person_id    uuid        NOT NULL,
    badge        text,
    pin          text,
    valid_from   timestamptz,
    valid_until  timestamptz,
    revoked      boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (badge IS NOT NULL OR pin IS NOT NULL),
    CONSTRAINT credentials_tenant_badge_key UNIQUE (tenant_id, badge),
    FOREIGN KEY (person_id, tenant_id) REFERENCES people (id, tenant_id) ON DELETE CASCADE
);

-- Automation rules (the rule engine evaluates them; here they are stored and managed).
CREATE TABLE rules (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (name <> ''),
    description  text,
    trigger      jsonb       NOT NULL,
    conditions   jsonb       NOT NULL DEFAULT '[]',
    actions      jsonb       NOT NULL,
    enabled      boolean     NOT NULL DEFAULT true,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rules_tenant_name_key UNIQUE (tenant_id, name),
    UNIQUE (id, tenant_id)
);

CREATE TABLE rule_executions (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    rule_id     uuid        NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    event_id    uuid,
    outcome     text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}',
    FOREIGN KEY (rule_id, tenant_id) REFERENCES rules (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX rule_executions_rule_idx ON rule_executions (rule_id, fired_at DESC);

-- Outgoing webhooks. The secret signs deliveries (HMAC), so it is stored as given, never served.
CREATE TABLE webhooks (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url         text        NOT NULL,
    events      text[]      NOT NULL,
    secret      text        NOT NULL,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Row-level security on every table with tenant data.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sites', 'edges', 'api_keys', 'events', 'users', 'refresh_tokens',
                             'password_resets', 'outbox', 'zones', 'cameras', 'sensors', 'devices',
                             'device_commands', 'stream_commands', 'people', 'credentials', 'rules', 'rule_executions', 'webhooks'] LOOP
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

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = vigil_current_tenant());
CREATE POLICY system_access ON tenants USING (vigil_system_access()) WITH CHECK (vigil_system_access());
GRANT SELECT ON tenants TO vigil_app;
