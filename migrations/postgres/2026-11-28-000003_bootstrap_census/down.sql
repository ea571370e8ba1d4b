DROP FUNCTION IF EXISTS flowexec_has_organizations();
DROP POLICY IF EXISTS owner_organization_census ON organizations;
