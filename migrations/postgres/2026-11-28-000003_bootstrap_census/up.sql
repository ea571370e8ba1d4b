-- First-start bootstrap needs to know whether any organization exists, a
-- question across tenants that the app role cannot ask under RLS. This
-- function answers only that yes/no, as the owner (whose policy below lets
-- it count organizations), with a pinned search_path.
CREATE POLICY owner_organization_census ON organizations FOR SELECT TO flowexec_owner USING (true);

CREATE FUNCTION flowexec_has_organizations()
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM public.organizations)
$$;
REVOKE ALL ON FUNCTION flowexec_has_organizations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_has_organizations() TO flowexec_runtime;
