-- The down link: a versioned configuration document per site, pulled by the site's edge.
--
-- What an edge runs is composed from the site's own configuration (`site_configs.access`: doors,
-- areas, access groups, schedules, holidays, offline policy; `site_configs.cameras`: each camera's
-- analytics), the tenant's people and credentials, and the tenant's rules. `sites.config_version` is bumped by triggers in the same transaction as
-- any change to one of those, so a reader that takes the version and the parts in one statement
-- always sees a consistent pair, and an edge waiting for "a version after N" never misses a change.

ALTER TABLE sites ADD COLUMN config_version bigint NOT NULL DEFAULT 1;

CREATE TABLE site_configs (
    site_id     uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    -- NULL: the cloud does not manage this part; the edge keeps its local file's.
    access      jsonb,
    cameras     jsonb,
    devices     jsonb,
    updated_by  uuid,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (site_id, tenant_id) REFERENCES sites (id, tenant_id) ON DELETE CASCADE
);

ALTER TABLE site_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE site_configs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON site_configs USING (tenant_id = vigil_current_tenant())
    WITH CHECK (tenant_id = vigil_current_tenant());
CREATE POLICY system_access ON site_configs USING (vigil_system_access()) WITH CHECK (vigil_system_access());
GRANT SELECT, INSERT, UPDATE, DELETE ON site_configs TO vigil_app;

-- What each edge reports running (NULL until its first report) and why it refused the latest
-- version it was offered, if it did.
ALTER TABLE edges
    ADD COLUMN config_version     bigint,
    ADD COLUMN config_reported_at timestamptz,
    ADD COLUMN config_problems    jsonb;

-- One site's configuration changed.
CREATE FUNCTION vigil_site_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sites SET config_version = config_version + 1
    WHERE id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.site_id ELSE NEW.site_id END);
    RETURN NULL;
END
$$;

-- A tenant-wide part (people, credentials, rules) changed: every site of the tenant.
CREATE FUNCTION vigil_tenant_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sites SET config_version = config_version + 1
    WHERE tenant_id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END);
    RETURN NULL;
END
$$;

-- The site's timezone is part of the document.
CREATE FUNCTION vigil_site_timezone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.timezone IS DISTINCT FROM OLD.timezone THEN
        NEW.config_version := OLD.config_version + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER site_configs_version AFTER INSERT OR UPDATE OR DELETE ON site_configs
    FOR EACH ROW EXECUTE FUNCTION vigil_site_config_changed();
CREATE TRIGGER people_config_version AFTER INSERT OR UPDATE OR DELETE ON people
    FOR EACH ROW EXECUTE FUNCTION vigil_tenant_config_changed();
CREATE TRIGGER credentials_config_version AFTER INSERT OR UPDATE OR DELETE ON credentials
    FOR EACH ROW EXECUTE FUNCTION vigil_tenant_config_changed();
CREATE TRIGGER rules_config_version AFTER INSERT OR UPDATE OR DELETE ON rules
    FOR EACH ROW EXECUTE FUNCTION vigil_tenant_config_changed();
CREATE TRIGGER sites_timezone_version BEFORE UPDATE OF timezone ON sites
    FOR EACH ROW EXECUTE FUNCTION vigil_site_timezone_changed();

-- Rule executions reported by edges (the rules run there) are stored once per rule and instant, so a
-- report sent again after a lost answer adds nothing.
CREATE UNIQUE INDEX rule_executions_rule_fired_key ON rule_executions (rule_id, fired_at);
