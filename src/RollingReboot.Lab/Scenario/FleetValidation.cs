namespace RollingReboot.Lab.Scenario;

/// <summary>
/// What a fleet (several scenarios, one pool each, in one lab with one CloudStack) must satisfy beyond each scenario:
/// a name per pool (the audits are keyed by it), no two clusters of the same name in one zone (CloudStack could not
/// tell them apart), and one XAPI user (the lab hands the CLI one user and password for every pool). Host and VM names
/// need only be unique within their pool; addresses and uuids are the lab's and always unique.
/// </summary>
public static class FleetValidation
{
    /// <exception cref="ScenarioException">One line naming the first problem.</exception>
    public static void Validate(IReadOnlyList<ScenarioFile> scenarios)
    {
        ArgumentNullException.ThrowIfNull(scenarios);
        if (scenarios.Count == 0)
        {
            throw new ScenarioException("a lab needs at least one scenario");
        }

        if (scenarios.GroupBy(s => s.Pool.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } samePool)
        {
            throw new ScenarioException($"two scenarios name their pool {samePool.Key}: each pool of a fleet needs its own pool.name");
        }

        var sameCluster = scenarios
            .Where(s => s.CloudStack is not null)
            .GroupBy(s => (Zone: s.CloudStack!.Zone.ToUpperInvariant(), Cluster: s.CloudStack.ClusterName.ToUpperInvariant()))
            .FirstOrDefault(g => g.Count() > 1);
        if (sameCluster is not null)
        {
            var cs = sameCluster.First().CloudStack!;
            throw new ScenarioException(
                $"pools {string.Join(" and ", sameCluster.Select(s => s.Pool.Name))} are both cluster {cs.ClusterName} in zone {cs.Zone}: a zone's clusters need distinct names");
        }

        var users = scenarios.Select(s => s.Pool.User ?? "root").Distinct(StringComparer.Ordinal).ToList();
        if (users.Count > 1)
        {
            throw new ScenarioException($"pool.user differs between scenarios ({string.Join(", ", users)}): every pool of a fleet lab has the same XAPI user and password");
        }
    }
}
