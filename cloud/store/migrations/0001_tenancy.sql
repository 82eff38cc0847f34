-- Tenants, their sites, the edges that upload for a site, and API keys.
--
-- Credentials (edge tokens, API keys) are stored only as the SHA-256 of the bearer string.
-- Composite foreign keys make it impossible for an edge to point at another tenant's site.

CREATE TABLE tenants (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL UNIQUE CHECK (name <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (name <> ''),
    timezone    text        NOT NULL DEFAULT 'UTC',
    address     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (id, tenant_id)
);

CREATE TABLE edges (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    site_id       uuid        NOT NULL,
    name          text        NOT NULL CHECK (name <> ''),
    token_hash    bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    revoked_at    timestamptz,
    last_seen_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, name),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE
);

-- Tenant-scoped read credentials, until user accounts and JWTs arrive.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    key_hash    bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);
